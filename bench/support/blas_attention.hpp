// The baseline every attention kernel is compared with: OpenBLAS sgemm + softmax +
// sgemm, what a framework without a fused kernel does.
//
//   S = scale * Q K^T      cblas_sgemm          (rows, L) per head
//   P = softmax(S)         row max, exp, sum    (causal: j > i is -inf before it)
//   O = P V                cblas_sgemm          (rows, D)
//
// Two variants: `full` materialises the whole (L, L) scores of one head at a time;
// `row_blocked` does kRowBlock query rows at a time, so its scores take kRowBlock x L
// (causal: a block multiplies only the keys its last row sees, and masks the rest).
// Heads run one after another; OpenBLAS threads each sgemm, OpenMP the softmax rows.
// The scratch is allocated once, at construction: extra_bytes() is its peak extra
// memory.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "attn/tensor.hpp"

namespace attn::bench {

enum class BlasVariant { full, row_blocked };
std::string to_string(BlasVariant variant);

inline constexpr std::int64_t kRowBlock = 256;

class BlasAttention {
 public:
  // For q, k, v and out of shape (B, H, L, D), contiguous; `threads` for OpenBLAS
  // (openblas_set_num_threads) and the softmax.
  BlasAttention(std::int64_t length, std::int64_t head_dim, BlasVariant variant, int threads);

  // out = softmax(q k^T / sqrt(D), causal top-left) v. Throws attn::Error for shapes
  // other than (B, H, length, head_dim) or a non-contiguous tensor.
  void run(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out, bool causal);

  std::int64_t extra_bytes() const {
    return static_cast<std::int64_t>(scores_.size() * sizeof(float));
  }

 private:
  std::int64_t length_, head_dim_;
  BlasVariant variant_;
  int threads_;
  std::vector<float> scores_;  // (rows, L): rows = L (full) or kRowBlock (row_blocked)
};

// OpenBLAS's own description of itself: openblas_get_corename() (the kernels in use,
// e.g. "Zen" or "Haswell") and openblas_get_config().
std::string openblas_corename();
std::string openblas_config();

}  // namespace attn::bench
