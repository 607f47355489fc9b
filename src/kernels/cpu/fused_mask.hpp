// A Mask as the fused kernels apply it to their tiles: the keys each query row may
// see from the structural terms (causal, lengths, windows), which decide the tiles
// a kernel skips, and the masking of one tile of scores.
#pragma once

#include <algorithm>
#include <cstdint>

#include "mask_view.hpp"

namespace attn::detail {

// Keys [lo, hi) of the mask's keys (0 <= lo <= hi <= mask.keys); empty when the
// row sees none of them.
struct KeyRange {
  std::int64_t lo = 0, hi = 0;
};

// The keys that the causal, length and window terms let query i of batch b see.
KeyRange structural_keys(const MaskView& mask, std::int64_t b, std::int64_t i);

// The keys of a block of query rows: those any row may see [first, last), and
// those every row sees [inner_lo, inner_hi) (empty when first >= last).
struct BlockKeys {
  std::int64_t first = 0, last = 0, inner_lo = 0, inner_hi = 0;
  // Whether a row of the block may see a key of [j0, j0 + cols).
  bool touches(std::int64_t j0, std::int64_t cols) const { return first < j0 + cols && j0 < last; }
  // Whether every row sees every key of [j0, j0 + cols), by the structural terms.
  bool covers(std::int64_t j0, std::int64_t cols) const { return inner_lo <= j0 && j0 + cols <= inner_hi; }
};

// The structural keys of query rows [i0, i0 + rows) of batch b, each row's into
// ranges[r], and the block's union and intersection of them.
BlockKeys block_keys(const MaskView& mask, std::int64_t b, std::int64_t i0, std::int64_t rows, KeyRange* ranges);

// The parts of a tile of keys [j0, j0 + cols) that the mask cuts through, for query
// rows [0, rows) whose structural ranges are ranges[0, rows): in parts of part_rows
// rows, each from the first row that sees a key of the tile (rounded down to a
// multiple of align, so that a part runs whole blocks of the tile product's rows)
// to the last such row, and up to those rows' last visible key. What the parts
// leave out is masked in every row it covers. Calls f(lo, hi, part_cols) for the
// rows [lo, hi) of each part that sees anything, against keys [j0, j0 + part_cols).
template <class F>
void for_each_part_seeing(const KeyRange* ranges, std::int64_t rows, std::int64_t j0, std::int64_t cols,
                          std::int64_t part_rows, std::int64_t align, F&& f) {
  const auto sees = [&](std::int64_t r) {
    return ranges[r].lo < ranges[r].hi && ranges[r].lo < j0 + cols && j0 < ranges[r].hi;
  };
  for (std::int64_t r0 = 0; r0 < rows; r0 += part_rows) {
    std::int64_t lo = r0, hi = std::min(rows, r0 + part_rows);
    while (lo < hi && !sees(lo)) ++lo;
    while (hi > lo && !sees(hi - 1)) --hi;
    if (lo == hi) continue;
    std::int64_t last = j0;
    for (std::int64_t r = lo; r < hi; ++r) last = std::max(last, ranges[r].hi);
    f(lo / align * align, hi, std::min(cols, last - j0));
  }
}

// Whether the mask has terms read entry by entry (dense booleans or biases), so
// that a tile inside every row's structural range is still masked.
inline bool has_elementwise_terms(const MaskView& mask) { return !mask.dense.empty() || !mask.biases.empty(); }

// A tile of scores: rows of queries i0, i0 + 1, ... of (b, h), each with its
// structural range, against keys [j0, j0 + cols) of the mask's keys, in s (rows,
// ld_s). Scores are in units of 1 / bias_scale (log2 e in the fused kernels).
struct ScoreTile {
  std::int64_t b = 0, h = 0, i0 = 0, rows = 0, j0 = 0, cols = 0;
  const KeyRange* ranges = nullptr;  // (rows)
  float* s = nullptr;
  std::int64_t ld_s = 0;
  double bias_scale = 1.0;
};

// Sets the tile's masked entries to -inf: outside each row's range and where a
// dense term forbids; adds the bias terms (times bias_scale) elsewhere. Padding
// columns [cols, ld_s) are left as they are.
void mask_score_tile(const MaskView& mask, const ScoreTile& t);

}  // namespace attn::detail
