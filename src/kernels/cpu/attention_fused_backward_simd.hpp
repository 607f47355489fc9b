// The lanes of the fused attention backward: plain functions over packed, padded
// tiles, dispatched to the best Highway target of the CPU. Tiles are row-major,
// rows padded to a multiple of fused_lanes() (attention_fused_simd.hpp).
#pragma once

#include <cstdint>

namespace attn::detail {

// c (rows, cols) = c + a b, or a b when !accumulate: a(r, k) = a[r * a_row + k *
// a_col] (a transposed tile is a_row = 1); b (depth, cols) with rows ld_b apart, c
// with rows ld_c apart; cols a multiple of the lanes. a_far: a is row-major (a_col
// = 1) and comes from beyond L2, so its rows are prefetched a block ahead.
struct TileProduct {
  const float* a = nullptr;
  std::int64_t a_row = 0, a_col = 1;
  const float* b = nullptr;
  std::int64_t ld_b = 0;
  float* c = nullptr;
  std::int64_t ld_c = 0;
  std::int64_t rows = 0, depth = 0, cols = 0;
  bool a_far = false;
};
void fused_tile_product(const TileProduct& t, bool accumulate);

// The probabilities of a tile from its scores (in units of log2 e) and the rows'
// saved log-sum-exp (the same units): s[r, :] = 2^(s[r, :] - lse2[r]); a row with
// lse2 = -inf (nothing allowed) gets zeros. s (rows, cols) with rows ld apart, cols
// a multiple of the lanes.
void fused_probabilities(float* s, std::int64_t rows, std::int64_t cols, std::int64_t ld, const float* lse2);

// Both steps of a tile without dropout in one pass: s = P = 2^(s - lse2) as
// fused_probabilities gives it, and the gradient of the scores dp = P (dp - delta),
// dp = dL/dP on entry, delta[r] = rowsum(dO_r o O_r). s and dp (rows, cols) with
// rows ld apart.
void fused_probabilities_and_score_grad(float* s, float* dp, std::int64_t rows, std::int64_t cols,
                                        std::int64_t ld, const float* lse2, const float* delta);

}  // namespace attn::detail
