// The row panels that the fused backward's S = Q K^T and dP = dO V^T read as their
// a operand (tile_packing.hpp): every element where the tile product looks for it,
// the rows past the end zero, from contiguous and strided sources alike.
#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "kernels/cpu/attention_fused_simd.hpp"
#include "kernels/cpu/tile_packing.hpp"

namespace {

using attn::detail::kTilePanelRows;
using attn::detail::pack_row_panels;
using attn::detail::row_panels_floats;
using attn::detail::Strides4;

// x(r, d) = 1000 r + d + 1: no element equals another or zero.
float element(std::int64_t r, std::int64_t d) { return static_cast<float>(1000 * r + d + 1); }

void expect_panels(std::int64_t rows, std::int64_t dim, bool transposed_source) {
  // A source of rows x dim, either row-major or its transpose read through strides.
  const Strides4 stride = transposed_source ? Strides4{0, 0, 1, rows} : Strides4{0, 0, dim, 1};
  std::vector<float> x(static_cast<std::size_t>(rows * dim));
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t d = 0; d < dim; ++d) x[r * stride.i + d * stride.j] = element(r, d);

  std::vector<float> to(static_cast<std::size_t>(row_panels_floats(rows, dim)), -1.0f);
  const float factor = 0.5f;
  pack_row_panels(x.data(), stride, rows, dim, factor, to.data());

  const std::int64_t panels = (rows + kTilePanelRows - 1) / kTilePanelRows;
  ASSERT_EQ(static_cast<std::int64_t>(to.size()), panels * kTilePanelRows * dim);
  for (std::int64_t r = 0; r < panels * kTilePanelRows; ++r)
    for (std::int64_t d = 0; d < dim; ++d) {
      // The tile product's a(r, k) with a_row = 1, a_col = kTilePanelRows, a_panel =
      // kTilePanelRows dim.
      const float got = to[(r / kTilePanelRows) * kTilePanelRows * dim + d * kTilePanelRows + r % kTilePanelRows];
      const float want = r < rows ? factor * element(r, d) : 0.0f;
      ASSERT_EQ(got, want) << "rows " << rows << " dim " << dim << " transposed " << transposed_source << " at ("
                           << r << ", " << d << ")";
    }
}

TEST(TilePacking, RowPanelsHoldEveryRowAndPadWithZeros) {
  for (std::int64_t rows : {1, 5, 6, 7, 12, 60, 61})
    for (std::int64_t dim : {1, 3, 64}) {
      expect_panels(rows, dim, false);
      expect_panels(rows, dim, true);
    }
}

TEST(TilePacking, RowPanelsOfNothing) {
  EXPECT_EQ(row_panels_floats(0, 64), 0);
  EXPECT_EQ(row_panels_floats(7, 0), 0);
  EXPECT_EQ(row_panels_floats(1, 2), kTilePanelRows * 2);
  std::vector<float> to(1, -1.0f);
  pack_row_panels(nullptr, Strides4{0, 0, 1, 1}, 0, 4, 1.0f, to.data());
  EXPECT_EQ(to[0], -1.0f) << "no rows: nothing written";
}

}  // namespace
