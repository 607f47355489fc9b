// y = x W^T + b with OpenBLAS: one sgemm over all rows, then the bias.
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

}  // namespace attn::detail
