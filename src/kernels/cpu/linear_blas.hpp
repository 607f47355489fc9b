// y = x W^T + b through OpenBLAS sgemm (float accumulation).
#pragma once

#include "kernels/params.hpp"

namespace attn::detail {

void linear_blas(const LinearParams& p);

}  // namespace attn::detail
