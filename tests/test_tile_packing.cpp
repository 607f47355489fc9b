// The packed tiles that the fused kernels' products read (tile_packing.hpp): rows
// as they are (pack_rows) and transposed (pack_transposed, in 8 x 8 register
// blocks where the source is contiguous), every element in its place and the
// padding zero, from contiguous and strided sources alike.
#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "kernels/cpu/tile_packing.hpp"

namespace {

using attn::detail::pack_rows;
using attn::detail::pack_transposed;
using attn::detail::Strides4;

// x(r, d) = 1000 r + d + 1: no element equals another or zero.
float element(std::int64_t r, std::int64_t d) { return static_cast<float>(1000 * r + d + 1); }

// A source of rows x dim, row-major (rows a little longer than dim, as a view of a
// wider tensor) or its transpose read through strides.
struct Source {
  Strides4 stride;
  std::vector<float> x;
};

Source make_source(std::int64_t rows, std::int64_t dim, bool transposed) {
  Source s;
  s.stride = transposed ? Strides4{0, 0, 1, rows} : Strides4{0, 0, dim + 3, 1};
  s.x.assign(static_cast<std::size_t>(rows * (dim + 3)), -7.0f);
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t d = 0; d < dim; ++d) s.x[r * s.stride.i + d * s.stride.j] = element(r, d);
  return s;
}

TEST(TilePacking, RowsHoldEveryElementScaledAndPadWithZeros) {
  for (std::int64_t rows : {1, 5, 8, 13})
    for (std::int64_t dim : {1, 3, 8, 17})
      for (bool transposed : {false, true}) {
        const Source s = make_source(rows, dim, transposed);
        const std::int64_t ld = dim + 16;
        std::vector<float> to(static_cast<std::size_t>(rows * ld), -1.0f);
        pack_rows(s.x.data(), s.stride, rows, dim, 0.5f, to.data(), ld);
        for (std::int64_t r = 0; r < rows; ++r)
          for (std::int64_t d = 0; d < ld; ++d)
            ASSERT_EQ(to[r * ld + d], d < dim ? 0.5f * element(r, d) : 0.0f)
                << "rows " << rows << " dim " << dim << " transposed " << transposed << " at (" << r << ", " << d
                << ")";
      }
}

TEST(TilePacking, TransposedHoldsEveryElementAndPadsWithZeros) {
  // Sizes around the 8 x 8 register blocks, so that every tail is taken.
  for (std::int64_t cols : {1, 7, 8, 9, 16, 21})
    for (std::int64_t depth : {1, 5, 8, 11, 16, 64})
      for (bool transposed : {false, true}) {
        const Source s = make_source(cols, depth, transposed);
        const std::int64_t ld = cols + 16;
        std::vector<float> to(static_cast<std::size_t>(depth * ld), -1.0f);
        pack_transposed(s.x.data(), s.stride, cols, depth, to.data(), ld);
        for (std::int64_t d = 0; d < depth; ++d)
          for (std::int64_t c = 0; c < ld; ++c)
            ASSERT_EQ(to[d * ld + c], c < cols ? element(c, d) : 0.0f)
                << "cols " << cols << " depth " << depth << " transposed " << transposed << " at (" << d << ", " << c
                << ")";
      }
}

}  // namespace
