#include "support/blas_attention.hpp"

#include <cblas.h>
#include <omp.h>
#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "attn/error.hpp"
#include "support/softmax_rows.hpp"

namespace attn::bench {

std::string to_string(BlasVariant variant) {
  return variant == BlasVariant::full ? "baseline_full" : "baseline_blocked";
}

BlasAttention::BlasAttention(std::int64_t length, std::int64_t head_dim, BlasVariant variant,
                             int threads)
    : length_(length),
      head_dim_(head_dim),
      variant_(variant),
      threads_(std::max(threads, 1)),
      rows_(variant == BlasVariant::full ? length : std::min(length, kRowBlock)) {
  scores_.assign(static_cast<std::size_t>(threads_ * rows_ * length), 0.0f);
}

namespace {

void check(const Tensor& t, const char* name, std::int64_t length, std::int64_t head_dim) {
  if (t.rank() != 4 || t.size(2) != length || t.size(3) != head_dim || !t.is_contiguous())
    throw Error(fmt::format("[BlasAttention::run] {} must be contiguous (B, H, {}, {}), found {}",
                            name, length, head_dim, t.shape_string()));
}

}  // namespace

void BlasAttention::run(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out,
                        bool causal) {
  check(q, "query", length_, head_dim_);
  check(k, "key", length_, head_dim_);
  check(v, "value", length_, head_dim_);
  check(out, "out", length_, head_dim_);
  if (k.shape() != q.shape() || v.shape() != q.shape() || out.shape() != q.shape())
    throw Error("[BlasAttention::run] query, key, value and out must have one shape");
  openblas_set_num_threads(1);
  const std::int64_t n = length_, d = head_dim_;
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));
  const std::int64_t blocks = (n + rows_ - 1) / rows_;
  const std::int64_t tasks = q.size(0) * q.size(1) * blocks;  // (head, row block)
#pragma omp parallel for num_threads(threads_) schedule(dynamic, 1)
  for (std::int64_t task = 0; task < tasks; ++task) {
    const std::int64_t h = task / blocks, r0 = task % blocks * rows_;
    float* s = scores_.data() + omp_get_thread_num() * rows_ * n;  // (rows, L)
    const float* qh = q.data() + h * n * d;                        // (L, D)
    const float* kh = k.data() + h * n * d;                        // (L, D)
    const float* vh = v.data() + h * n * d;                        // (L, D)
    float* oh = out.data() + h * n * d;                            // (L, D)
    const std::int64_t rows = std::min(rows_, n - r0);
    // Causal row blocks stop at the last key their last row sees.
    const std::int64_t keys = causal && variant_ == BlasVariant::row_blocked ? r0 + rows : n;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(rows),
                static_cast<int>(keys), static_cast<int>(d), scale, qh + r0 * d,
                static_cast<int>(d), kh, static_cast<int>(d), 0.0f, s, static_cast<int>(n));
    softmax_rows(s, rows, keys, n, r0, causal);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(rows),
                static_cast<int>(d), static_cast<int>(keys), 1.0f, s, static_cast<int>(n), vh,
                static_cast<int>(d), 0.0f, oh + r0 * d, static_cast<int>(d));
  }
}

std::string openblas_corename() { return openblas_get_corename(); }
std::string openblas_config() { return openblas_get_config(); }

}  // namespace attn::bench
