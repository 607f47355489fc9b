// The parts that the fused kernels cut a masked tile into (fused_mask.hpp's
// for_each_part_seeing): every row that sees a key of the tile is in a part, every
// key it sees within the part's columns, and what is left out is masked.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <tuple>
#include <vector>

#include "kernels/cpu/fused_mask.hpp"

namespace {

using attn::detail::for_each_part_seeing;
using attn::detail::KeyRange;
using Part = std::tuple<std::int64_t, std::int64_t, std::int64_t>;  // rows [lo, hi), columns

std::vector<Part> parts(const std::vector<KeyRange>& ranges, std::int64_t j0, std::int64_t cols,
                        std::int64_t part_rows, std::int64_t align) {
  std::vector<Part> out;
  for_each_part_seeing(ranges.data(), static_cast<std::int64_t>(ranges.size()), j0, cols, part_rows, align,
                       [&](std::int64_t lo, std::int64_t hi, std::int64_t part_cols) {
                         out.emplace_back(lo, hi, part_cols);
                       });
  return out;
}

// Row i of a causal mask sees keys [0, i + 1).
std::vector<KeyRange> causal_rows(std::int64_t first, std::int64_t rows) {
  std::vector<KeyRange> r;
  for (std::int64_t i = first; i < first + rows; ++i) r.push_back({0, i + 1});
  return r;
}

TEST(FusedMaskParts, CausalDiagonalSkipsTheMaskedTriangle) {
  // Rows 0-11 against keys [4, 12): rows 0-3 see none of them; rows 4 and 5 see
  // keys 4 and 4-5, so their part stops after 2 columns; row 11 sees all 8.
  EXPECT_EQ(parts(causal_rows(0, 12), 4, 8, 6, 1), (std::vector<Part>{{4, 6, 2}, {6, 12, 8}}));
  // From a whole panel of 6 rows: the first part starts at row 0.
  EXPECT_EQ(parts(causal_rows(0, 12), 4, 8, 6, 6), (std::vector<Part>{{0, 6, 2}, {6, 12, 8}}));
  // Rows 12-23 against keys [0, 16): rows 12-15 see keys up to 13-16, rows 16-23 all.
  EXPECT_EQ(parts(causal_rows(12, 12), 0, 16, 4, 1), (std::vector<Part>{{0, 4, 16}, {4, 8, 16}, {8, 12, 16}}));
  EXPECT_EQ(parts(causal_rows(2, 4), 0, 16, 4, 1), (std::vector<Part>{{0, 4, 6}})) << "rows 2-5: up to key 5";
  // One part for the block: up to the last row's last key.
  EXPECT_EQ(parts(causal_rows(0, 12), 4, 8, 12, 1), (std::vector<Part>{{4, 12, 8}}));
}

TEST(FusedMaskParts, EveryRowThatSeesTheTileIsInAPart) {
  // A window: row i sees keys [i, i + 3); some rows see nothing at all.
  std::vector<KeyRange> ranges;
  for (std::int64_t i = 0; i < 20; ++i) ranges.push_back(i % 7 == 3 ? KeyRange{5, 5} : KeyRange{i, i + 3});
  const std::int64_t j0 = 6, cols = 8;
  for (std::int64_t part_rows : {1, 4, 6, 20})
    for (std::int64_t align : {1, 2, 6}) {
      std::vector<bool> covered(ranges.size(), false);
      for (const auto& [lo, hi, part_cols] : parts(ranges, j0, cols, part_rows, align)) {
        EXPECT_EQ(lo % align, 0);
        EXPECT_GT(part_cols, 0);
        EXPECT_LE(part_cols, cols);
        for (std::int64_t r = lo; r < hi; ++r) {
          covered[static_cast<std::size_t>(r)] = true;
          // Every key the row sees in the tile lies within the part's columns.
          const KeyRange k = ranges[static_cast<std::size_t>(r)];
          if (k.lo < k.hi && k.lo < j0 + cols && j0 < k.hi) {
            EXPECT_LE(std::min(k.hi, j0 + cols), j0 + part_cols);
          }
        }
      }
      for (std::size_t r = 0; r < ranges.size(); ++r) {
        const KeyRange k = ranges[r];
        const bool sees = k.lo < k.hi && k.lo < j0 + cols && j0 < k.hi;
        if (sees) {
          EXPECT_TRUE(covered[r]) << "row " << r << ", parts of " << part_rows << ", align " << align;
        }
      }
    }
}

TEST(FusedMaskParts, NoPartWhenNoRowSeesTheTile) {
  EXPECT_TRUE(parts(causal_rows(0, 6), 10, 8, 6, 6).empty());
  EXPECT_TRUE(parts({{3, 3}, {0, 0}}, 0, 8, 6, 1).empty()) << "empty ranges see nothing";
}

}  // namespace
