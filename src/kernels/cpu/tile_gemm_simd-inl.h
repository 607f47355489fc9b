// The register-blocked product of the fused kernels' tiles, c = a b, shared by the
// forward (scores, P V) and the backward (scores, dP, dV, dQ, dK). A Highway
// "-inl.h" header: included once per target, hence the toggle guard.
//
// Register blocking (AVX2: 16 vector registers of 8 floats): 6 rows of c x 2
// vectors = 12 accumulators; per step of the depth loop 2 loads of b, 6
// broadcasts of a and 12 independent FMAs (AVX-512 takes 6 x 4: kTileVecBlock).
// The FMA latency (4 cycles x 2 pipes) needs 8 in flight; 12 leave slack for the
// loads, and 12 + 2 + 1 registers do not spill.
// Two vectors divide every padded tile and head dim of 16 floats or more, so the
// common head dims (64, 128) and tiles have no column tail; 4 x 3 had a 2-vector
// tail (8 accumulators, no slack) at D = 64 and a 1-vector one at 128 keys.
// Measured on Zen 3 (forward, B=1, H=8, L=2048, 1 thread, best of runs): D=64 57
// against 53 GFLOP/s, D=128 64 against 58. The rows left over go in one smaller
// block. The loops over column chunks are outside the loops over row groups, so
// that b's chunk (depth, 2 vectors) stays in L1 while the rows of a stream past.
//
// a is read through two strides, a(r, k) = a[r * a_row + k * a_col], since its
// elements are broadcast one at a time: a transposed operand (P^T, dS^T in the
// backward) costs nothing more than a row-major one. Rows in panels (a panel's six
// rows side by side at each depth, so that a block's broadcasts read one cache
// line) once gave the backward's S and dP 127.1 against 117.8 GFLOP/s (D = 128,
// Br = 64); with 120-row blocks and c prefetched (TileChunk) they gave nothing, or
// less than plain rows (D=64 L=2048 118.8 against 125.4, 2 threads, medians of 9
// alternated runs), and were dropped.
#if defined(ATTN_KERNELS_CPU_TILE_GEMM_SIMD_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef ATTN_KERNELS_CPU_TILE_GEMM_SIMD_INL_H_
#undef ATTN_KERNELS_CPU_TILE_GEMM_SIMD_INL_H_
#else
#define ATTN_KERNELS_CPU_TILE_GEMM_SIMD_INL_H_
#endif

#include <algorithm>
#include <cstdint>

#include "hwy/highway.h"
#include "kernels/cpu/attention_fused_simd.hpp"
#include "kernels/cpu/scratch_buffers.hpp"

HWY_BEFORE_NAMESPACE();
namespace attn::detail::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// What c starts from before a b is added.
enum class TileInit {
  zero,         // c = a b
  load,         // c += a b
  load_scaled,  // c[r, :] = c[r, :] row_scale[r] + a[r, :] b (the online softmax's rescale)
};

// The operands of c (rows, cols) = a (rows, depth) b (depth, cols): b's rows ld_b
// apart and c's ld_c apart, cols a multiple of the lanes, every column read and
// written (padding included). a(r, k) = a[r a_row + k a_col].
struct TileOperands {
  const float* a;
  std::int64_t a_row, a_col;
  const float* b;
  std::int64_t ld_b;
  float* c;
  std::int64_t ld_c;
  const float* row_scale;  // (rows), for TileInit::load_scaled
  bool a_far;              // a row-major (a_col = 1) and beyond L2: see TileChunk
};

inline constexpr int kTileRowBlock = static_cast<int>(kTilePanelRows);  // rows of c per block
// Vectors of columns per block. AVX-512's 32 registers hold 6 x 4 accumulators
// (24 + 4 + 1): per step 4 loads and 6 broadcasts feed 24 FMAs, and a 64-column
// chunk halves the passes over a's rows, though at depth 128 the chunk (32 KiB)
// no longer stays in L1 alone. Measured on Zen 4 (forward, B=1, H=8,
// L=4096, 2 threads, 3 alternated runs of medians of 5, GFLOP/s): D=128 207.6,
// 209.4, 208.9 against 207.2, 207.4, 207.0 with 6 x 2; D=64 200.3, 202.0, 202.2
// against 197.2, 201.9, 199.1. 12 x 2 was slower (D=128 202.8 to 205.0).
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX3
inline constexpr int kTileVecBlock = 4;
#else
inline constexpr int kTileVecBlock = 2;
#endif

template <TileInit kInit, int R, int NV>
HWY_INLINE void TileBlock(const TileOperands& t, std::int64_t r0, std::int64_t c0, std::int64_t depth) {
  using D = hn::ScalableTag<float>;
  using V = hn::Vec<D>;
  const D d;
  const auto N = static_cast<std::int64_t>(hn::Lanes(d));
  const float* HWY_RESTRICT a = t.a + r0 * t.a_row;
  const float* HWY_RESTRICT b = t.b + c0;
  float* HWY_RESTRICT c = t.c + r0 * t.ld_c + c0;
  V acc[R][NV];
  for (int r = 0; r < R; ++r) {
    for (int v = 0; v < NV; ++v) {
      if constexpr (kInit == TileInit::zero) {
        acc[r][v] = hn::Zero(d);
      } else if constexpr (kInit == TileInit::load) {
        acc[r][v] = hn::LoadU(d, c + r * t.ld_c + v * N);
      } else {
        acc[r][v] = hn::Mul(hn::LoadU(d, c + r * t.ld_c + v * N), hn::Set(d, t.row_scale[r0 + r]));
      }
    }
  }
  for (std::int64_t k = 0; k < depth; ++k) {
    V bv[NV];
    for (int v = 0; v < NV; ++v) bv[v] = hn::LoadU(d, b + k * t.ld_b + v * N);
    const float* ak = a + k * t.a_col;
    for (int r = 0; r < R; ++r) {
      const V ab = hn::Set(d, ak[r * t.a_row]);
      for (int v = 0; v < NV; ++v) acc[r][v] = hn::MulAdd(ab, bv[v], acc[r][v]);
    }
  }
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < NV; ++v) hn::StoreU(acc[r][v], d, c + r * t.ld_c + v * N);
}

// Asks for the first `width` floats of `rows` rows, `ld` apart from `first`, to
// come into L1 while the block before them runs; kRw = 1 for rows to be written.
template <int kRw>
HWY_INLINE void PrefetchRowSpans(const float* first, std::int64_t ld, std::int64_t rows, std::int64_t width) {
  constexpr int kKeepInL1 = 3;
  for (std::int64_t r = 0; r < rows; ++r) {
    const float* row = first + r * ld;
    for (std::int64_t at = 0; at < width; at += kCacheLineFloats) __builtin_prefetch(row + at, kRw, kKeepInL1);
    __builtin_prefetch(row + width - 1, kRw, kKeepInL1);  // rows need not start on a line
  }
}

template <TileInit kInit, int NV>
HWY_INLINE void TileChunk(const TileOperands& t, std::int64_t c0, std::int64_t rows, std::int64_t depth) {
  const auto N = static_cast<std::int64_t>(hn::Lanes(hn::ScalableTag<float>()));
  std::int64_t r = 0;
  for (; r + kTileRowBlock <= rows; r += kTileRowBlock) {
    // c += a b: the next block's rows of c come in while this block runs. The
    // backward's accumulators (dV, dK, and the partial dQ, which a task revisits
    // once per key tile, from L3) otherwise stall each block's first loads.
    // Measured on Zen 3 (backward, B=1, H=8, 2 threads, medians of 5 to 9
    // alternated runs, GFLOP/s): D=128 L=2048 132.7 against 121.9, L=4096 147.4
    // against 133.2, causal L=2048 138.7 against 124.2; D=64 L=4096 139.2 against
    // 133.7, causal L=2048 139.3 against 127.7; L=8192 within 1% either way; two
    // blocks ahead 125.8 (D=128 L=2048). The forward's O (load_scaled), hot in L2,
    // gained nothing from it.
    const std::int64_t next = r + kTileRowBlock, next_rows = std::min<std::int64_t>(rows - next, kTileRowBlock);
    if constexpr (kInit == TileInit::load) PrefetchRowSpans<1>(t.c + next * t.ld_c + c0, t.ld_c, next_rows, NV * N);
    // A row-major a from L3 (the backward's Q and dO, revisited once per key tile):
    // the next block's rows, all their depth. Each block starts six rows of eight or
    // so lines, too short a stream for the hardware's prefetchers; with a's rows
    // from L3 the backward's S and dP ran at 85% of their speed with the rows in L2
    // (timed with the time-stamp counter against the same product run again at
    // once, D = 128, L = 2048, 1 thread), with this at 94 to 96%. Only the first
    // column chunk needs it: the others find a in L2.
    if (t.a_far && c0 == 0) PrefetchRowSpans<0>(t.a + next * t.a_row, t.a_row, next_rows, depth);
    TileBlock<kInit, kTileRowBlock, NV>(t, r, c0, depth);
  }
  // The rows left over in one block: one row at a time, each a chain of NV FMAs
  // waiting on the last, ran 128 rows (21 blocks and 2 rows) in the time of 22.3
  // blocks.
  switch (rows - r) {
    case 5: TileBlock<kInit, 5, NV>(t, r, c0, depth); break;
    case 4: TileBlock<kInit, 4, NV>(t, r, c0, depth); break;
    case 3: TileBlock<kInit, 3, NV>(t, r, c0, depth); break;
    case 2: TileBlock<kInit, 2, NV>(t, r, c0, depth); break;
    case 1: TileBlock<kInit, 1, NV>(t, r, c0, depth); break;
    default: break;
  }
}

// c (rows, cols) = init(c) + a (rows, depth) b (depth, cols): chunks of
// kTileVecBlock vectors, then one of 2 and one of 1 for what is left.
template <TileInit kInit>
HWY_INLINE void TileMulAdd(const TileOperands& t, std::int64_t rows, std::int64_t depth, std::int64_t cols) {
  const auto N = static_cast<std::int64_t>(hn::Lanes(hn::ScalableTag<float>()));
  std::int64_t c0 = 0;
  for (; c0 + kTileVecBlock * N <= cols; c0 += kTileVecBlock * N)
    TileChunk<kInit, kTileVecBlock>(t, c0, rows, depth);
  if constexpr (kTileVecBlock > 2) {
    if (c0 + 2 * N <= cols) {
      TileChunk<kInit, 2>(t, c0, rows, depth);
      c0 += 2 * N;
    }
  }
  if (c0 < cols) TileChunk<kInit, 1>(t, c0, rows, depth);
}

}  // namespace attn::detail::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#endif  // ATTN_KERNELS_CPU_TILE_GEMM_SIMD_INL_H_
