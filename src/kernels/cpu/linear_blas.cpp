// y = x W^T + b with OpenBLAS: one sgemm over all rows, then the bias; and its
// backward: two sgemm and the column sums of dy.
#include "kernels/cpu/linear_blas.hpp"

#include <cblas.h>

#include <algorithm>

namespace attn::detail {

void linear_blas(const LinearParams& p) {
  if (p.rows == 0 || p.out == 0) return;
  if (p.in == 0) {  // an empty reduction: y = b
    for (std::int64_t r = 0; r < p.rows; ++r)
      for (std::int64_t o = 0; o < p.out; ++o) p.y[r * p.out + o] = p.bias ? p.bias[o] : 0.0f;
    return;
  }
  // The op hands over rows with unit column stride (it copies otherwise); a
  // single row may have any row stride, and BLAS wants lda >= in.
  const std::int64_t lda = p.rows == 1 ? p.in : std::max(p.x_row_stride, p.in);
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<blasint>(p.rows),
              static_cast<blasint>(p.out), static_cast<blasint>(p.in), 1.0f, p.x,
              static_cast<blasint>(lda), p.weight, static_cast<blasint>(p.in), 0.0f, p.y,
              static_cast<blasint>(p.out));
  if (p.bias != nullptr)
    for (std::int64_t r = 0; r < p.rows; ++r)
      for (std::int64_t o = 0; o < p.out; ++o) p.y[r * p.out + o] += p.bias[o];
}

void linear_backward_blas(const LinearBackwardParams& p) {
  if (p.rows == 0 || p.out == 0 || p.in == 0) return;  // every gradient is zero or empty
  const std::int64_t lda = p.rows == 1 ? p.in : std::max(p.x_row_stride, p.in);
  const auto rows = static_cast<blasint>(p.rows), in = static_cast<blasint>(p.in),
             out = static_cast<blasint>(p.out);
  // dx (rows, in) = dy (rows, out) W (out, in)
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, in, out, 1.0f, p.dy, out, p.weight, in,
              0.0f, p.dx, in);
  // dW (out, in) = dy^T (out, rows) x (rows, in)
  cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, out, in, rows, 1.0f, p.dy, out, p.x,
              static_cast<blasint>(lda), 0.0f, p.dweight, in);
  if (p.dbias == nullptr) return;
  for (std::int64_t r = 0; r < p.rows; ++r)
    for (std::int64_t o = 0; o < p.out; ++o) p.dbias[o] += p.dy[r * p.out + o];
}

void set_blas_threads(int n) { openblas_set_num_threads(n); }

}  // namespace attn::detail
