// y = x W^T + b and its backward through OpenBLAS sgemm (float accumulation).
#pragma once

#include "kernels/params.hpp"

namespace attn::detail {

void linear_blas(const LinearParams& p);
// dx = dy W and dW = dy^T x as two sgemm; db = column sums of dy. The op zeroes
// the gradients first, so empty reductions leave them zero.
void linear_backward_blas(const LinearBackwardParams& p);
// The threads of OpenBLAS's own pool, which runs these products.
void set_blas_threads(int n);

}  // namespace attn::detail
