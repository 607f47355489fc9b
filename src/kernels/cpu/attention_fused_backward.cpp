// The fused CPU backward. For each task, a chunk of the key tiles of one (b, kv
// head); for each key tile, every query block of the group's heads that the mask
// lets see it:
//   S  = Q K^T (scaled, in units of log2 e, as the forward computed it)
//   P  = 2^(S - lse)            the forward's softmax, from its saved lse
//   dP = dO V^T                 (times the forward's dropout mask)
//   dS = P (dP - D)             D = rowsum(dO o O), taken once before the tiles
//   dV += P^T dO, dK += dS^T Q  in the task's tile accumulators
//   dQ += dS K                  in the task's own partial dQ
// params.hpp states the contract. The lanes are in attention_fused_backward_simd.cpp.
#include "kernels/cpu/attention_fused_backward.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <vector>

#include "attn/threads.hpp"
#include "block_cache.hpp"
#include "kernels/cpu/attention_fused_backward_simd.hpp"
#include "kernels/cpu/attention_fused_simd.hpp"
#include "kernels/cpu/fused_mask.hpp"
#include "kernels/cpu/scratch_buffers.hpp"
#include "kernels/cpu/tile_packing.hpp"
#include "kernels/dropout.hpp"
#include "threads/parallel_for.hpp"

namespace attn::detail {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();
// Tasks the key chunks aim at: 8 per thread on two threads, 2 per thread on 8.
constexpr std::int64_t kTargetTasks = 16;
// Bc D at most: 128 keys of D = 128, 256 of D = 64.
constexpr std::int64_t kBackwardTileFloats = 128 * 128;
constexpr std::int64_t kBackwardKeyColsCap = 256;
// Br: 20 panels of the tile product's rows (fused_backward_tiles).
constexpr std::int64_t kBackwardQueryRows = 20 * kTilePanelRows;
// Rows of a part of a pair that the mask cuts through (KeyChunkTask::edge_pair):
// 5 panels. Measured (B=1, H=8, causal, 2 threads, Br = 120, medians of 7 to 11
// alternated runs, GFLOP/s): D=128 L=2048 115.9 against 107.3 for the whole
// block, 112.4 for 18 rows, 108.8 for 12; D=64 L=4096 122.5 against 118.3.
constexpr std::int64_t kEdgeRows = 5 * kTilePanelRows;

// The sizes every task shares.
struct Plan {
  std::int64_t br = 0, bc = 0;   // tiles
  std::int64_t lanes = 0;        // floats per vector
  std::int64_t width_s = 0;      // Bc padded to lanes: the columns of a pair's scores
  std::int64_t ld_s = 0;         // rows of scores and dS: width_s and a cache line (kRowSkew)
  std::int64_t ld_t = 0;         // rows of K^T and V^T: the same
  std::int64_t width_k = 0;      // Dk padded to lanes: the columns the products compute
  std::int64_t width_v = 0;      // Dv padded to lanes
  std::int64_t ld_k = 0;         // rows of Dk floats: width_k and a cache line (kRowSkew)
  std::int64_t ld_v = 0;         // rows of Dv floats: width_v and a cache line
  std::int64_t group = 1;        // query heads per key/value head
  std::int64_t mask_tiles = 0;   // key tiles over the mask's keys, then the appended keys'
  std::int64_t key_tiles = 0;
  std::int64_t chunks = 1;       // key chunks per (b, kv head)
  std::int64_t query_blocks = 0; // per (b, h)
  float q_scale = 0;             // scale log2 e, folded into the packed Q
  float keep_scale = 0;          // 1 / (1 - p), 0 when p = 1
};

// What the tasks read beside the params, computed before them.
struct Shared {
  std::vector<float> lse2;         // (B, Hq, Lq): lse in units of log2 e
  std::vector<float> delta;        // (B, Hq, Lq): D = rowsum(dO o O)
  std::vector<KeyRange> keys;      // (B, Lq): each row's structural range
  std::vector<BlockKeys> blocks;   // (B, query blocks)
  std::shared_ptr<void> dq_block;  // (chunks, B, Hq, Lq, ld_k) floats: the partial dQ of each chunk
  float* dq = nullptr;
  // (chunks, B, Hq, Lq): whether a chunk wrote its partial dQ's row. A chunk writes
  // only the rows that its tiles meet, the first time from zero: under a causal
  // mask the later chunks meet none of the first rows.
  std::unique_ptr<std::uint8_t[]> dq_written;
  std::vector<std::int64_t> chunk_tiles;  // (chunks + 1): the first key tile of each chunk
};

// The scratch of one worker, each buffer starting on a cache line.
struct Scratch {
  std::shared_ptr<void> memory;
  float* kt = nullptr;  // (Dk, ld_t): the key tile transposed
  float* vt = nullptr;  // (Dv, ld_t): the value tile transposed
  float* k = nullptr;   // (Bc, ld_k): the key tile
  float* dk = nullptr;  // (Bc, ld_k): the tile's dK, in units of Q's packing
  float* dv = nullptr;  // (Bc, ld_v): the tile's dV
  float* q = nullptr;     // (group, Lq, ld_k): the task's queries times scale log2 e
  float* dout = nullptr;  // (group, Lq, ld_v): the task's dO
  float* s = nullptr;   // (Br, ld_s): scores, then P
  float* dp = nullptr;  // (Br, ld_s): dP, then dS
};

Scratch make_scratch(const SdpaBackwardParams& p, const Plan& plan) {
  Scratch w;
  w.memory = carve_buffers({{&w.kt, p.key_dim * plan.ld_t},
                            {&w.vt, p.value_dim * plan.ld_t},
                            {&w.k, plan.bc * plan.ld_k},
                            {&w.dk, plan.bc * plan.ld_k},
                            {&w.dv, plan.bc * plan.ld_v},
                            {&w.q, plan.group * p.queries * plan.ld_k},
                            {&w.dout, plan.group * p.queries * plan.ld_v},
                            {&w.s, plan.br * plan.ld_s},
                            {&w.dp, plan.br * plan.ld_s}});
  return w;
}

// Each key tile's work: the (query, key) pairs that the mask's structure lets
// through, over every batch, and one block of Br rows for its packing. Appended
// keys are seen by every row.
std::vector<std::int64_t> tile_work(const SdpaBackwardParams& p, const Plan& plan,
                                    const std::vector<KeyRange>& ranges) {
  const std::int64_t mask_keys = p.mask->keys;
  std::vector<std::int64_t> seen(static_cast<std::size_t>(mask_keys + 1), 0);  // rows seeing each key, as steps
  for (const KeyRange& r : ranges)
    if (r.lo < r.hi) {
      ++seen[static_cast<std::size_t>(r.lo)];
      --seen[static_cast<std::size_t>(r.hi)];
    }
  std::vector<std::int64_t> work(static_cast<std::size_t>(plan.key_tiles), 0);
  std::int64_t rows = 0;
  for (std::int64_t j = 0; j < mask_keys; ++j) {
    rows += seen[static_cast<std::size_t>(j)];
    work[static_cast<std::size_t>(j / plan.bc)] += rows;
  }
  const std::int64_t all_rows = p.batch * p.queries;
  for (std::int64_t j = mask_keys; j < p.keys; ++j)
    work[static_cast<std::size_t>(plan.mask_tiles + (j - mask_keys) / plan.bc)] += all_rows;
  for (std::int64_t& w : work) w += plan.bc * plan.br;
  return work;
}

// lse in units of log2 e, D = rowsum(dO o O) (in double, then rounded: Dv terms,
// a small share of the work), and the structural ranges of the rows and blocks.
// The rows of lse and D a head at a time, on the threads.
Shared prepare(const SdpaBackwardParams& p, const Plan& plan) {
  Shared sh;
  const std::int64_t rows = p.batch * p.q_heads * p.queries;
  sh.lse2.resize(static_cast<std::size_t>(rows));
  sh.delta.resize(static_cast<std::size_t>(rows));
  parallel_for(p.batch * p.q_heads, [&](std::int64_t bh, int) {
    const std::int64_t b = bh / p.q_heads, h = bh % p.q_heads;
    for (std::int64_t i = 0; i < p.queries; ++i) {
      const std::int64_t row = bh * p.queries + i;
      sh.lse2[row] = static_cast<float>(p.lse[row] * kLog2e);
      const float* dout = p.grad.dout + p.grad.dout_stride.at(b, h, i, 0);
      const float* out = p.out + p.out_stride.at(b, h, i, 0);
      double D = 0.0;
      for (std::int64_t d = 0; d < p.value_dim; ++d)
        D += static_cast<double>(dout[d * p.grad.dout_stride.j]) * out[d * p.out_stride.j];
      sh.delta[row] = static_cast<float>(D);
    }
  });

  const MaskView& mask = *p.mask;
  sh.keys.resize(static_cast<std::size_t>(p.batch * p.queries));
  sh.blocks.resize(static_cast<std::size_t>(p.batch * plan.query_blocks));
  for (std::int64_t b = 0; b < p.batch; ++b)
    for (std::int64_t qb = 0; qb < plan.query_blocks; ++qb) {
      const std::int64_t i0 = qb * plan.br;
      sh.blocks[b * plan.query_blocks + qb] =
          block_keys(mask, b, i0, std::min(plan.br, p.queries - i0), &sh.keys[b * p.queries + i0]);
    }

  sh.chunk_tiles = fused_backward_chunk_bounds(tile_work(p, plan, sh.keys), plan.chunks);

  // Not zeroed: each chunk's first product into a row starts it from zero. Zeroing
  // the whole of it in the tasks took 4% of the backward at L = 2048, causal, 1
  // thread (timed with the time-stamp counter), most of it in the first touch of
  // fresh pages. From the block cache (attn/memory.hpp), a backward run again at
  // the same shape reuses the pages of the last one: in fresh pages its dQ
  // products ran a fifth slower (1 thread, time-stamp counter) and the whole
  // backward 3 to 4% (Zen 3, B=1, H=8, L=2048, 2 threads, medians of 11 alternated
  // runs: D=128 129.5 against 134.7 GFLOP/s, D=64 causal 109.4 against 112.3, D=64
  // L=4096 130.7 against 135.4).
  sh.dq_block = allocate_block(static_cast<std::size_t>(plan.chunks * rows * plan.ld_k) * sizeof(float));
  sh.dq = static_cast<float*>(sh.dq_block.get());
  sh.dq_written = std::make_unique<std::uint8_t[]>(static_cast<std::size_t>(plan.chunks * rows));
  return sh;
}

// One task: the key tiles [tile_lo, tile_hi) of (b, kv head), against every query
// block of the heads that share that kv head, in a fixed order.
class KeyChunkTask {
 public:
  KeyChunkTask(const SdpaBackwardParams& p, const Plan& plan, const Shared& sh, Scratch& w, std::int64_t task)
      : p_(p), plan_(plan), sh_(sh), w_(w), mask_(*p.mask) {
    const std::int64_t chunk = task % plan.chunks;
    const std::int64_t bkv = task / plan.chunks;
    b_ = bkv / p.kv_heads;
    kvh_ = bkv % p.kv_heads;
    tile_lo_ = sh.chunk_tiles[static_cast<std::size_t>(chunk)];
    tile_hi_ = sh.chunk_tiles[static_cast<std::size_t>(chunk + 1)];
    dq_ = sh.dq + chunk * p.batch * p.q_heads * p.queries * plan.ld_k;
    dq_written_ = sh.dq_written.get() + chunk * p.batch * p.q_heads * p.queries;
    elementwise_ = has_elementwise_terms(mask_);
  }

  void run() {
    pack_queries();
    for (std::int64_t t = tile_lo_; t < tile_hi_; ++t) {
      // The mask's keys in tiles of Bc, then the appended keys in tiles of Bc.
      const bool appended = t >= plan_.mask_tiles;
      const std::int64_t j0 = appended ? mask_.keys + (t - plan_.mask_tiles) * plan_.bc : t * plan_.bc;
      const std::int64_t end = appended ? p_.keys : mask_.keys;
      key_tile(j0, std::min(plan_.bc, end - j0), appended);
    }
  }

 private:
  void key_tile(std::int64_t j0, std::int64_t cols, bool appended) {
    pack_keys(j0, cols);
    std::fill_n(w_.dk, cols * plan_.ld_k, 0.0f);
    std::fill_n(w_.dv, cols * plan_.ld_v, 0.0f);
    pack_transposed(p_.k + p_.k_stride.at(b_, kvh_, j0, 0), p_.k_stride, cols, p_.key_dim, w_.kt, plan_.ld_t);
    pack_transposed(p_.v + p_.v_stride.at(b_, kvh_, j0, 0), p_.v_stride, cols, p_.value_dim, w_.vt, plan_.ld_t);
    for (std::int64_t h = kvh_ * plan_.group; h < (kvh_ + 1) * plan_.group; ++h)
      for (std::int64_t qb = 0; qb < plan_.query_blocks; ++qb) {
        const BlockKeys& bk = sh_.blocks[b_ * plan_.query_blocks + qb];
        if (!appended && !bk.touches(j0, cols)) continue;  // the mask skips the pair
        const bool inside = appended || (!elementwise_ && bk.covers(j0, cols));
        const std::int64_t i0 = qb * plan_.br, rows = std::min(plan_.br, p_.queries - i0);
        if (inside) {
          query_block(h, i0, rows, j0, cols, true);
        } else {
          edge_pair(h, i0, rows, j0, cols);
        }
      }
    write_tile(j0, cols);
  }

  // A pair that the mask cuts through, in parts of kEdgeRows rows
  // (for_each_part_seeing): under a causal mask that skips most of the diagonal
  // tile's masked triangle, whose P and dS are 0 and add nothing to dV, dK or dQ.
  // Parts start on a panel of the tile product's rows.
  void edge_pair(std::int64_t h, std::int64_t i0, std::int64_t rows, std::int64_t j0, std::int64_t cols) {
    for_each_part_seeing(&sh_.keys[b_ * p_.queries + i0], rows, j0, cols, kEdgeRows, kTilePanelRows,
                         [&](std::int64_t lo, std::int64_t hi, std::int64_t part_cols) {
                           query_block(h, i0 + lo, hi - lo, j0, part_cols, false);
                         });
  }

  // The key tile's rows (cols, ld_k), for dQ += dS K, padded with zeros: copied
  // even when contiguous, for the skew of their rows.
  void pack_keys(std::int64_t j0, std::int64_t cols) {
    pack_rows(p_.k + p_.k_stride.at(b_, kvh_, j0, 0), p_.k_stride, cols, p_.key_dim, 1.0f, w_.k, plan_.ld_k);
  }

  // Q times scale log2 e and dO of the group's heads, once per task, for the query
  // blocks that the task's tiles meet, in rows padded with zeros and a cache line
  // longer (kRowSkew): the a operands of S = Q K^T and dP = dO V^T, the b operands
  // of dK += dS^T Q and dV += P^T dO. Packed per query block and key tile instead,
  // they were read from L3 at every pair: 9% of the time at L = 2048, D = 128
  // (timed per step with the time-stamp counter), and prefetching them a block
  // ahead did not help.
  void pack_queries() {
    for (std::int64_t g = 0; g < plan_.group; ++g) {
      const std::int64_t h = kvh_ * plan_.group + g;
      const float* q = p_.q + p_.q_stride.at(b_, h, 0, 0);
      const float* dout = p_.grad.dout + p_.grad.dout_stride.at(b_, h, 0, 0);
      for (std::int64_t qb = 0; qb < plan_.query_blocks; ++qb) {
        if (!meets(qb)) continue;
        const std::int64_t i0 = qb * plan_.br, rows = std::min(plan_.br, p_.queries - i0);
        pack_rows(q + i0 * p_.q_stride.i, p_.q_stride, rows, p_.key_dim, plan_.q_scale,
                  w_.q + (g * p_.queries + i0) * plan_.ld_k, plan_.ld_k);
        pack_rows(dout + i0 * p_.grad.dout_stride.i, p_.grad.dout_stride, rows, p_.value_dim, 1.0f,
                  w_.dout + (g * p_.queries + i0) * plan_.ld_v, plan_.ld_v);
      }
    }
  }

  // Whether a tile of the task meets query block qb: a key the mask lets one of its
  // rows see, or an appended key.
  bool meets(std::int64_t qb) const {
    if (tile_hi_ > plan_.mask_tiles) return true;
    const std::int64_t j0 = tile_lo_ * plan_.bc, j1 = std::min(tile_hi_ * plan_.bc, mask_.keys);
    return sh_.blocks[b_ * plan_.query_blocks + qb].touches(j0, j1 - j0);
  }

  // Rows [i0, i0 + rows) of query block i0 / Br of head h against the keys [j0,
  // j0 + cols).
  void query_block(std::int64_t h, std::int64_t i0, std::int64_t rows, std::int64_t j0, std::int64_t cols,
                   bool inside) {
    const std::int64_t row0 = (b_ * p_.q_heads + h) * p_.queries + i0;
    const std::int64_t ld_s = plan_.ld_s, width = round_up(cols, plan_.lanes);
    const std::int64_t g = h - kvh_ * plan_.group;
    const float* q = w_.q + (g * p_.queries + i0) * plan_.ld_k;
    const float* dout = w_.dout + (g * p_.queries + i0) * plan_.ld_v;

    // The packed Q and dO come from L3 at each pair: a task's pass over its query
    // blocks is more than L2 holds.
    constexpr bool kQueryRowsFar = true;
    // forward: S = Q K^T, masked; so now the same scores (the forward's packing of
    // Q and the same products give the same bits).
    fused_tile_product({q, plan_.ld_k, 1, w_.kt, plan_.ld_t, w_.s, ld_s, rows, p_.key_dim, width, kQueryRowsFar},
                       false);
    if (cols < width)
      for (std::int64_t r = 0; r < rows; ++r) std::fill(w_.s + r * ld_s + cols, w_.s + r * ld_s + width, kNegInf);
    if (!inside)
      mask_score_tile(mask_, {b_, h, i0, rows, j0, cols, &sh_.keys[b_ * p_.queries + i0], w_.s, ld_s, kLog2e});
    // forward: O = P V (P dropped out); so now dP = dO V^T, and dV += P^T dO below.
    fused_tile_product(
        {dout, plan_.ld_v, 1, w_.vt, plan_.ld_t, w_.dp, ld_s, rows, p_.value_dim, width, kQueryRowsFar}, false);
    if (p_.dropout.p > 0.0) {
      // forward: P = 2^(S - m) / l, lse = m + log l; so now P = 2^(S - lse).
      fused_probabilities(w_.s, rows, width, ld_s, &sh_.lse2[row0]);
      // forward: P' = P m, m = keep / (1 - p) or 0; so now dP = m dO V^T, dS =
      // P (dP - D), and dV += P'^T dO.
      for (std::int64_t r = 0; r < rows; ++r)
        for (std::int64_t c = 0; c < cols; ++c) {
          const auto index = static_cast<std::uint64_t>((row0 + r) * p_.keys + j0 + c);
          const float m = dropout_keeps(p_.dropout.seed, index, p_.dropout.p) ? plan_.keep_scale : 0.0f;
          float& P = w_.s[r * ld_s + c];
          float& dP = w_.dp[r * ld_s + c];
          dP = P * (dP * m - sh_.delta[row0 + r]);
          P *= m;
        }
    } else {
      // forward: P = softmax(S) with lse = m + log l; so now P = 2^(S - lse) and
      // dS = P (dP - D), in one pass.
      fused_probabilities_and_score_grad(w_.s, w_.dp, rows, width, ld_s, &sh_.lse2[row0], &sh_.delta[row0]);
    }
    fused_tile_product({w_.s, 1, ld_s, dout, plan_.ld_v, w_.dv, plan_.ld_v, cols, rows, plan_.width_v}, true);
    // forward: S = Q K^T; so now dQ += dS K and dK += dS^T Q.
    float* dq = dq_ + row0 * plan_.ld_k;
    fused_tile_product({w_.dp, ld_s, 1, w_.k, plan_.ld_k, dq, plan_.ld_k, rows, cols, plan_.width_k},
                       start_dq_rows(row0, rows));
    fused_tile_product({w_.dp, 1, ld_s, q, plan_.ld_k, w_.dk, plan_.ld_k, cols, rows, plan_.width_k}, true);
  }

  // Readies rows [row0, row0 + rows) of the chunk's partial dQ for a product into
  // them, and says whether the product adds to them (false: it starts them from
  // zero). When only some were written before, the others are zeroed first.
  bool start_dq_rows(std::int64_t row0, std::int64_t rows) {
    std::uint8_t* written = dq_written_ + row0;
    const std::int64_t count = std::count(written, written + rows, std::uint8_t{1});
    if (count != 0 && count != rows)
      for (std::int64_t r = 0; r < rows; ++r)
        if (written[r] == 0) std::fill_n(dq_ + (row0 + r) * plan_.ld_k, plan_.ld_k, 0.0f);
    std::fill_n(written, rows, std::uint8_t{1});
    return count != 0;
  }

  // dK and dV of the tile's keys: this task is their one writer. dK is in units of
  // the packed Q (scale log2 e): times scale / (scale log2 e).
  void write_tile(std::int64_t j0, std::int64_t cols) const {
    const auto unit = static_cast<float>(p_.scale / static_cast<double>(plan_.q_scale));
    for (std::int64_t c = 0; c < cols; ++c) {
      const std::int64_t key = (b_ * p_.kv_heads + kvh_) * p_.keys + j0 + c;
      float* dk = p_.dk + key * p_.key_dim;
      for (std::int64_t d = 0; d < p_.key_dim; ++d) dk[d] = w_.dk[c * plan_.ld_k + d] * unit;
      std::memcpy(p_.grad.dv + key * p_.value_dim, w_.dv + c * plan_.ld_v,
                  static_cast<std::size_t>(p_.value_dim) * sizeof(float));
    }
  }

  const SdpaBackwardParams& p_;
  const Plan& plan_;
  const Shared& sh_;
  Scratch& w_;
  const MaskView& mask_;
  std::int64_t b_ = 0, kvh_ = 0, tile_lo_ = 0, tile_hi_ = 0;
  float* dq_ = nullptr;  // this chunk's partial dQ (B, Hq, Lq, ld_k)
  std::uint8_t* dq_written_ = nullptr;  // (B, Hq, Lq): which of its rows it wrote
  bool elementwise_ = false;
};

// dq = scale (the chunks' partials summed in chunk order), for rows [row, row + n).
void sum_partials(const SdpaBackwardParams& p, const Plan& plan, const Shared& sh, std::int64_t row,
                  std::int64_t n) {
  const std::int64_t rows = p.batch * p.q_heads * p.queries;
  const auto scale = static_cast<float>(p.scale);
  for (std::int64_t r = row; r < row + n; ++r) {
    float* dq = p.dq + r * p.key_dim;
    for (std::int64_t d = 0; d < p.key_dim; ++d) {
      float sum = 0.0f;
      for (std::int64_t c = 0; c < plan.chunks; ++c)
        if (sh.dq_written[c * rows + r] != 0) sum += sh.dq[(c * rows + r) * plan.ld_k + d];
      dq[d] = scale * sum;
    }
  }
}

}  // namespace

FusedBackwardTiles fused_backward_tiles(std::int64_t key_dim, std::int64_t value_dim) {
  // Bc: each pass over a query block's Q, dO and partial dQ (from L3 at L >= 2048)
  // serves Bc keys, so the larger the better while a key tile's K^T, V^T, K, dK
  // and dV (5 Bc D floats) stay in L2. Measured on Zen 3 (B=1, H=8, 2 threads,
  // medians of 5 to 7 alternated runs): Bc = 128 against 64, D=64 L=4096 135
  // against 128 GFLOP/s, D=128 L=2048 130 against 122 (96: 124). With Br = 120
  // and the edge parts, Bc = 256 against 128 at D = 64 (3 to 11 alternated runs):
  // L=2048 140.1 against 132.3, L=8192 145.7 against 137.7, causal L=2048 127.8
  // against 121.3 and L=4096 136.8 against 131.9 (192 between); on one thread the
  // same. Each pass over the queries then serves twice the keys.
  // Br: a multiple of the tile product's 6 rows, so that S, dP and dQ run no
  // smaller block. Against 64 (4 rows left over), with Q and dO then in row
  // panels (2 threads, 7 to 11 alternated runs, GFLOP/s): D=128 L=4096 132.5
  // against 123.6, D=128 L=2048 causal 117.0 against 115.6, D=64 L=2048 140.5
  // against 138.3; 66 and 72 between the two.
  // Then 120 against 60, once the pairs a mask cuts through skip the rows that see
  // none of their keys (5 to 11 alternated runs): D=64 L=8192 150.6 against 138.2,
  // D=128 L=4096 146.4 against 134.4, D=64 L=4096 133.5 against 123.0, causal D=64
  // L=4096 120.8 against 117.6; 180 within the noise of 120, 240 slower. dV and dK
  // load and store their tile's accumulators once per query block, Br deep.
  const std::int64_t d = std::max<std::int64_t>({key_dim, value_dim, 1});
  const std::int64_t bc = std::clamp<std::int64_t>(kBackwardTileFloats / d / 16 * 16, 16, kBackwardKeyColsCap);
  return {kBackwardQueryRows, bc};
}

std::int64_t fused_backward_key_chunks(std::int64_t batch, std::int64_t kv_heads, std::int64_t key_tiles) {
  const std::int64_t heads = std::max<std::int64_t>(batch * kv_heads, 1);
  return std::clamp<std::int64_t>((kTargetTasks + heads - 1) / heads, 1, std::max<std::int64_t>(key_tiles, 1));
}

std::vector<std::int64_t> fused_backward_chunk_bounds(const std::vector<std::int64_t>& tile_work,
                                                      std::int64_t chunks) {
  const auto tiles = static_cast<std::int64_t>(tile_work.size());
  std::vector<std::int64_t> prefix(tile_work.size() + 1, 0);  // work of the tiles before each
  for (std::size_t t = 0; t < tile_work.size(); ++t) prefix[t + 1] = prefix[t] + tile_work[t];
  std::vector<std::int64_t> bounds(static_cast<std::size_t>(chunks + 1), 0);
  bounds.back() = tiles;
  for (std::int64_t c = 1; c < chunks; ++c) {
    // The cut nearest to c / chunks of the work, leaving each chunk a tile.
    const double target = static_cast<double>(prefix.back()) * static_cast<double>(c) / static_cast<double>(chunks);
    auto t = static_cast<std::int64_t>(std::lower_bound(prefix.begin(), prefix.end(), target) - prefix.begin());
    if (t > 0 && target - static_cast<double>(prefix[static_cast<std::size_t>(t - 1)]) <
                     static_cast<double>(prefix[static_cast<std::size_t>(t)]) - target)
      --t;
    bounds[static_cast<std::size_t>(c)] =
        std::clamp(t, bounds[static_cast<std::size_t>(c - 1)] + 1, tiles - (chunks - c));
  }
  return bounds;
}

namespace {

Plan make_plan(const SdpaBackwardParams& p) {
  const FusedBackwardTiles tiles = fused_backward_tiles(p.key_dim, p.value_dim);
  const std::int64_t lanes = fused_lanes();
  Plan plan;
  plan.br = tiles.query_rows;
  plan.bc = tiles.key_cols;
  plan.lanes = lanes;
  plan.width_s = round_up(plan.bc, lanes);
  plan.ld_s = plan.width_s + kRowSkew;
  plan.ld_t = plan.width_s + kRowSkew;
  plan.width_k = round_up(std::max<std::int64_t>(p.key_dim, 1), lanes);
  plan.width_v = round_up(std::max<std::int64_t>(p.value_dim, 1), lanes);
  plan.ld_k = plan.width_k + kRowSkew;
  plan.ld_v = plan.width_v + kRowSkew;
  plan.group = kv_group(p.q_heads, p.kv_heads);
  const std::int64_t mask_keys = p.mask->keys;
  plan.mask_tiles = (mask_keys + plan.bc - 1) / plan.bc;
  plan.key_tiles = plan.mask_tiles + (p.keys - mask_keys + plan.bc - 1) / plan.bc;
  plan.chunks = fused_backward_key_chunks(p.batch, p.kv_heads, plan.key_tiles);
  plan.query_blocks = (p.queries + plan.br - 1) / plan.br;
  plan.q_scale = static_cast<float>(p.scale * kLog2e);
  plan.keep_scale = p.dropout.p < 1.0 ? static_cast<float>(1.0 / (1.0 - p.dropout.p)) : 0.0f;
  return plan;
}

}  // namespace

std::string fused_backward_describe(const SdpaBackwardParams& p) {
  const Plan plan = make_plan(p);
  return std::string(fused_target_name()) + " via Highway, Br=" + std::to_string(plan.br) +
         ", Bc=" + std::to_string(plan.bc) + ", " + std::to_string(plan.chunks) + " key chunk" +
         (plan.chunks == 1 ? "" : "s");
}

void sdpa_backward_fused(const SdpaBackwardParams& p) {
  const std::int64_t rows = p.batch * p.q_heads * p.queries;
  const std::int64_t keys = p.batch * p.kv_heads * p.keys;
  if (rows == 0 || keys == 0) {  // no scores: every gradient is zero
    std::fill_n(p.dq, rows * p.key_dim, 0.0f);
    std::fill_n(p.dk, keys * p.key_dim, 0.0f);
    std::fill_n(p.grad.dv, keys * p.value_dim, 0.0f);
    return;
  }
  const Plan plan = make_plan(p);
  const Shared sh = prepare(p, plan);
  const int workers = num_threads();
  std::vector<Scratch> scratch;
  for (int w = 0; w < workers; ++w) scratch.push_back(make_scratch(p, plan));
  const std::int64_t tasks = p.batch * p.kv_heads * plan.chunks;
  parallel_for(tasks, [&](std::int64_t task, int worker) {
    KeyChunkTask(p, plan, sh, scratch[static_cast<std::size_t>(worker)], task).run();
  });
  constexpr std::int64_t kRowsPerTask = 256;
  parallel_for((rows + kRowsPerTask - 1) / kRowsPerTask, [&](std::int64_t task, int) {
    const std::int64_t row = task * kRowsPerTask;
    sum_partials(p, plan, sh, row, std::min(kRowsPerTask, rows - row));
  });
}

}  // namespace attn::detail
