// linear's input as a (rows, in) matrix that BLAS can read: shared by the forward
// and the backward.
#pragma once

#include <cstdint>
#include <limits>

#include "attn/tensor.hpp"

namespace attn::detail {

// x (..., in) as (rows, in) with unit column stride and a row stride of at least
// `in` (so broadcast rows, stride 0, are copied): a view when x's strides allow
// it, as a (L, B, E) input does; a copy otherwise.
inline Tensor linear_rows(const Tensor& x, std::int64_t rows, std::int64_t in) {
  if (auto strides = reshape_strides(x.shape(), x.strides(), {rows, in});
      strides && (*strides)[1] == 1 && (rows == 1 || (*strides)[0] >= in))
    return Tensor::wrap(x.data(), {rows, in}, *strides);
  return x.contiguous().reshape({rows, in});
}

// Whether sizes and the row stride fit BLAS's 32-bit integers; anything larger
// goes through the reference loops.
inline bool fits_blas(std::int64_t rows, std::int64_t in, std::int64_t out, std::int64_t row_stride) {
  constexpr std::int64_t kBlasMax = std::numeric_limits<std::int32_t>::max();
  return rows <= kBlasMax && in <= kBlasMax && out <= kBlasMax && row_stride <= kBlasMax;
}

}  // namespace attn::detail
