#include "kernels/cpu/fused_mask.hpp"

#include <algorithm>
#include <limits>

namespace attn::detail {

KeyRange structural_keys(const MaskView& mask, std::int64_t b, std::int64_t i) {
  std::int64_t lo = 0, hi = mask.keys;
  for (Align a : mask.causal) hi = std::min(hi, mask.diagonal(a, i) + 1);
  for (const MaskView::Lengths& len : mask.lengths) hi = std::min(hi, len.data[b * len.stride_b + i * len.stride_i]);
  for (const WindowTerm& win : mask.windows) {
    // Keys p - left <= j <= p + right, compared as differences: windows may be as
    // large as int64 allows.
    const std::int64_t pos = mask.diagonal(win.align, i);
    if (win.left < pos - lo) lo = pos - win.left;
    if (win.right < hi - 1 - pos) hi = pos + win.right + 1;
  }
  lo = std::max<std::int64_t>(lo, 0);
  return {lo, std::max(hi, lo)};
}

BlockKeys block_keys(const MaskView& mask, std::int64_t b, std::int64_t i0, std::int64_t rows, KeyRange* ranges) {
  BlockKeys k{mask.keys, 0, 0, mask.keys};
  for (std::int64_t r = 0; r < rows; ++r) {
    const KeyRange range = structural_keys(mask, b, i0 + r);
    ranges[r] = range;
    k.inner_lo = std::max(k.inner_lo, range.lo);
    k.inner_hi = std::min(k.inner_hi, range.hi);
    if (range.lo < range.hi) {
      k.first = std::min(k.first, range.lo);
      k.last = std::max(k.last, range.hi);
    }
  }
  return k;
}

void mask_score_tile(const MaskView& mask, const ScoreTile& t) {
  constexpr float kNegInf = -std::numeric_limits<float>::infinity();
  const bool elementwise = has_elementwise_terms(mask);
  for (std::int64_t r = 0; r < t.rows; ++r) {
    float* s = t.s + r * t.ld_s;
    // The row's structural range as columns [a, z) of the tile.
    const std::int64_t a = std::clamp(t.ranges[r].lo - t.j0, std::int64_t{0}, t.cols);
    const std::int64_t z = std::clamp(t.ranges[r].hi - t.j0, a, t.cols);
    std::fill(s, s + a, kNegInf);
    std::fill(s + z, s + t.cols, kNegInf);
    if (!elementwise) continue;
    const std::int64_t i = t.i0 + r;
    for (std::int64_t c = a; c < z; ++c) {
      const std::int64_t j = t.j0 + c;
      bool allowed = true;
      for (const MaskView::Dense& d : mask.dense) allowed = allowed && d.data[d.stride.at(t.b, t.h, i, j)] == d.keep;
      s[c] = allowed ? s[c] + static_cast<float>(mask.bias(t.b, t.h, i, j) * t.bias_scale) : kNegInf;
    }
  }
}

}  // namespace attn::detail
