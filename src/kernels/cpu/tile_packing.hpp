// Copies of strided rows into the padded, row-major tiles that the fused kernels'
// lanes read (attention_fused_simd.hpp): rows as they are, or transposed.
#pragma once

#include <algorithm>
#include <cstdint>

#include "kernels/cpu/attention_fused_simd.hpp"
#include "mask_view.hpp"

namespace attn::detail {

// to (rows, ld) = factor x for `rows` rows of x, stride.i apart with elements
// stride.j apart; columns [dim, ld) zeroed. The contiguous case apart, so that its
// loop is in lanes.
inline void pack_rows(const float* x, const Strides4& stride, std::int64_t rows, std::int64_t dim, float factor,
                      float* to, std::int64_t ld) {
  for (std::int64_t r = 0; r < rows; ++r) {
    const float* from = x + r * stride.i;
    float* row = to + r * ld;
    if (stride.j == 1) {
      for (std::int64_t d = 0; d < dim; ++d) row[d] = factor * from[d];
    } else {
      for (std::int64_t d = 0; d < dim; ++d) row[d] = factor * from[d * stride.j];
    }
    std::fill(row + dim, row + ld, 0.0f);
  }
}

// to (depth, ld) = the transpose of `cols` rows of x (K or V), laid out as for
// pack_rows; columns [cols, ld) zeroed. In registers when elements are contiguous,
// else element by element along the strides.
inline void pack_transposed(const float* x, const Strides4& stride, std::int64_t cols, std::int64_t depth,
                            float* to, std::int64_t ld) {
  if (stride.j == 1) {
    fused_pack_transposed(x, stride.i, cols, depth, to, ld);
    return;
  }
  for (std::int64_t d = 0; d < depth; ++d) {
    float* row = to + d * ld;
    for (std::int64_t c = 0; c < cols; ++c) row[c] = x[c * stride.i + d * stride.j];
    std::fill(row + cols, row + ld, 0.0f);
  }
}

}  // namespace attn::detail
