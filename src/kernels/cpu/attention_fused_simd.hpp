// The lanes of the fused attention kernel: plain functions over packed, padded
// tiles, each dispatched once per call to the best Highway target of the CPU.
// No vector types here; attention_fused.cpp holds the math around them.
//
// Tiles are row-major and padded: a row of `cols` floats is stored in `ld`
// floats, ld a multiple of fused_lanes(), the padding zero (or -inf in scores)
// so that no loop has a tail.
#pragma once

#include <cstdint>

namespace attn::detail {

// Rows of c in the tile products' register block (tile_gemm_simd-inl.h): a panel
// of rows. Query blocks are whole panels, so that no smaller block runs.
inline constexpr std::int64_t kTilePanelRows = 6;

// Scores are kept in units of log2 e (e^s = 2^(s log2 e)), so that the softmax's
// exp is a 2^x; the backward recomputes the forward's scores in the same units.
inline constexpr double kLog2e = 1.4426950408889634074;

// x rounded up to a multiple of m: a row's width padded to whole vectors.
inline std::int64_t round_up(std::int64_t x, std::int64_t m) { return (x + m - 1) / m * m; }

// Floats per vector of the target that runs (8 for AVX2); the padding unit.
std::int64_t fused_lanes();
// The name of the Highway target that runs, such as "AVX2".
const char* fused_target_name();

// The first `width` columns of s = q kt (width a multiple of the lanes, at most
// ld_s): q (rows, depth) with row stride ldq, kt (depth, >= width) with row stride
// ld_kt, s with row stride ld_s.
void fused_scores(const float* q, std::int64_t ldq, const float* kt, std::int64_t ld_kt, float* s, std::int64_t rows,
                  std::int64_t depth, std::int64_t width, std::int64_t ld_s);

// kt (depth, ld) = the transpose of k (cols, depth), whose rows are row_stride apart
// and whose elements are contiguous; columns [cols, ld) of kt are zeroed.
void fused_pack_transposed(const float* k, std::int64_t row_stride, std::int64_t cols,
                           std::int64_t depth, float* kt, std::int64_t ld);

// The online-softmax step of one tile, in base 2 (scores come in units of log2 e,
// so that 2^s is e^score), for each row r: m_new = max(m[r], max_j s[r, j]);
// s[r, :] = 2^(s[r, :] - m_new); alpha[r] = 2^(m[r] - m_new); l[r] = l[r] alpha[r] +
// sum_j s[r, j]; m[r] = m_new. A row with nothing allowed so far (m_new = -inf)
// keeps m, l and gets zeros and alpha = 1; a row whose max is +inf or NaN gets
// l = NaN, as 0/0 gives in the reference. j runs over the first `width` columns of
// s (a multiple of the lanes), whose rows are ld_s apart; row_sum is scratch (rows).
void fused_softmax_step(float* s, std::int64_t rows, std::int64_t width, std::int64_t ld_s, float* m,
                        float* l, float* alpha, float* row_sum);

// o[r, :] = o[r, :] alpha[r] + p[r, :cols] v: p (rows, ld_p), v (cols, ld_o) with
// rows ld_v apart (ld_o floats read from each), o (rows, ld_o).
void fused_pv(const float* p, std::int64_t ld_p, const float* v, std::int64_t ld_v, float* o,
              const float* alpha, std::int64_t rows, std::int64_t cols, std::int64_t ld_o);

}  // namespace attn::detail
