// The fused CPU kernel: for each (b, h, query block), the key tiles that the mask
// leaves any allowed entry in, each as S = Q K^T, an online softmax step and
// O = O alpha + P V; then O / l and lse = m + log l. A task takes up to 16 query
// blocks of one head (as many as L2 holds their Q and O, to the nearest), which
// share each packed K^T and V tile. Scores are kept in units of log2 e (the scale
// folded into Q once, when it is packed), so that the softmax takes 2^x, cheaper in
// lanes than e^x.
// The lanes are in attention_fused_simd.cpp.
#include "kernels/cpu/attention_fused.hpp"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <limits>
#include <memory>
#include <vector>

#include "attn/threads.hpp"
#include "kernels/cpu/attention_fused_simd.hpp"
#include "kernels/cpu/fused_mask.hpp"
#include "kernels/cpu/scratch_buffers.hpp"
#include "kernels/cpu/tile_packing.hpp"
#include "kernels/dropout.hpp"
#include "threads/parallel_for.hpp"

namespace attn::detail {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();
constexpr double kLn2 = 0.69314718055994530942;
constexpr std::int64_t kTileCap = 256;      // Bc at most
constexpr std::int64_t kQueryRowCap = 120;  // Br at most: see fused_tiles
constexpr std::int64_t kTileAlign = 16;     // Bc a multiple of two AVX-512 vectors
constexpr std::int64_t kRowAlign = kTilePanelRows;  // Br: whole row panels, see fused_tiles
// Rows of a part of a tile that the mask cuts through (BlockTask::edge_tile): 3
// panels. Measured (B=1, H=8, L=2048, causal, 2 threads, Br = 120, medians of 11
// to 15 alternated runs, GFLOP/s): against whole blocks, parts of 30 rows gave
// D=128 126.4 against 122.7 and D=64 129.4 against 122.2; in a later run, 18 rows
// gave D=128 118.3 against 113.1 for 30, and 12 ran within the noise of 18.
constexpr std::int64_t kEdgeRows = 3 * kTilePanelRows;
// Query blocks per task at most: they share each packed K^T and V tile, so that
// the packing is paid once per that many blocks. See fused_task_block_cap.
constexpr std::int64_t kMaxBlocksPerTask = 16;

// The scratch of one worker, each buffer starting on a cache line. A task's rows
// are up to kMaxBlocksPerTask query blocks of Br rows; S holds one block at a time.
struct Scratch {
  std::shared_ptr<void> memory;
  float* q = nullptr;      // (rows, Dk), times scale log2 e
  float* kt = nullptr;     // (Dk, ld_kt): the key tile transposed
  float* v = nullptr;      // (Bc, ld_v): the value tile
  float* s = nullptr;      // (Br, ld_s): one block's scores, then probabilities
  float* o = nullptr;      // (rows, ld_o): the unnormalised output
  float* m = nullptr;      // (rows): running max, in units of log2 e
  float* l = nullptr;      // (rows): running sum of exp
  float* alpha = nullptr;  // (rows): rescale of o for the current tile; after it, lse / ln 2
  float* sum = nullptr;    // (rows): the current tile's row sums
  std::vector<KeyRange> keys;  // (rows): each row's structurally allowed keys
};

// The sizes every task shares.
struct Plan {
  std::int64_t br = 0, bc = 0;  // tiles
  std::int64_t blocks_per_task = 1;
  std::int64_t task_rows = 0;   // br * blocks_per_task
  std::int64_t lanes = 0;
  std::int64_t ld_s = 0;        // Bc padded to lanes
  std::int64_t ld_kt = 0;       // ld_s and a cache line: see kRowSkew
  std::int64_t ld_o = 0;        // Dv padded to lanes
  std::int64_t ld_v = 0;        // ld_o and a cache line: see kRowSkew
  std::int64_t query_tasks = 0; // tasks per (b, h)
  std::int64_t group = 1;       // query heads per key/value head
  float keep_scale = 0;         // 1 / (1 - p), 0 when p = 1
};

Scratch make_scratch(const SdpaParams& p, const Plan& plan) {
  const std::int64_t rows = plan.task_rows;
  Scratch w;
  w.memory = carve_buffers({{&w.q, rows * p.key_dim},
                            {&w.kt, p.key_dim * plan.ld_kt},
                            {&w.v, plan.bc * plan.ld_v},
                            {&w.s, plan.br * plan.ld_s},
                            {&w.o, rows * plan.ld_o},
                            {&w.m, rows},
                            {&w.l, rows},
                            {&w.alpha, rows},
                            {&w.sum, rows}});
  w.keys.resize(static_cast<std::size_t>(rows));
  return w;
}

// One query block of a task: its rows [r0, r0 + rows) of the task, and their keys.
struct QueryBlock {
  std::int64_t r0 = 0, rows = 0;
  BlockKeys keys;
};

// One task: the rows [i0, i0 + rows) of (b, h), in query blocks of Br rows that
// share each packed K^T and V tile. Key tiles lie on one grid, multiples of Bc,
// and a row's tiles do not depend on the other rows of its task: the results are
// the same bits however rows are grouped into tasks.
class BlockTask {
 public:
  BlockTask(const SdpaParams& p, const Plan& plan, Scratch& w, std::int64_t task)
      : p_(p), plan_(plan), w_(w), mask_(*p.mask) {
    // Every head's last rows first: under a causal mask they see the most keys,
    // and the dynamic schedule evens the threads out best when the longest tasks
    // go first.
    const std::int64_t heads = p.batch * p.q_heads;
    const std::int64_t bh = task % heads;
    b_ = bh / p.q_heads;
    h_ = bh % p.q_heads;
    i0_ = (plan.query_tasks - 1 - task / heads) * plan.task_rows;
    rows_ = std::min(plan.task_rows, p.queries - i0_);
    kvh_ = h_ / plan.group;
    row0_ = (b_ * p.q_heads + h_) * p.queries + i0_;
  }

  void run() {
    structural_ranges();
    pack_queries();
    std::fill_n(w_.o, rows_ * plan_.ld_o, 0.0f);
    std::fill_n(w_.m, rows_, kNegInf);
    std::fill_n(w_.l, rows_, 0.0f);
    for_each_tile([&](std::int64_t j0, std::int64_t cols) { forward_tile(j0, cols); });
    finish();
    if (p_.weights != nullptr) write_weights();
  }

 private:
  // Each row's structural range; each block's union and intersection of them, and
  // the task's union [first_, last_).
  void structural_ranges() {
    const std::int64_t keys = mask_.keys;
    first_ = keys;
    last_ = 0;
    blocks_ = 0;
    for (std::int64_t r0 = 0; r0 < rows_; r0 += plan_.br) {
      QueryBlock& q = blocks_at_[static_cast<std::size_t>(blocks_++)];
      q.r0 = r0;
      q.rows = std::min(plan_.br, rows_ - r0);
      q.keys = block_keys(mask_, b_, i0_ + r0, q.rows, &w_.keys[static_cast<std::size_t>(r0)]);
      first_ = std::min(first_, q.keys.first);
      last_ = std::max(last_, q.keys.last);
    }
    elementwise_ = has_elementwise_terms(mask_);
  }

  // The key tiles of the task in order: the grid's tiles that meet [first_,
  // last_), then the unmasked keys appended after the mask's keys.
  template <class F>
  void for_each_tile(F&& f) const {
    for (std::int64_t j0 = first_ / plan_.bc * plan_.bc; j0 < last_; j0 += plan_.bc)
      f(j0, std::min(plan_.bc, last_ - j0));
    for (std::int64_t j0 = mask_.keys; j0 < p_.keys; j0 += plan_.bc)
      f(j0, std::min(plan_.bc, p_.keys - j0));
  }

  // Whether the tile [j0, j0 + cols) holds any key a row of block q may see.
  bool touches(const QueryBlock& q, std::int64_t j0, std::int64_t cols) const {
    return j0 >= mask_.keys || q.keys.touches(j0, cols);
  }

  // Q times scale log2 e, (rows, Dk).
  void pack_queries() {
    pack_rows(p_.q + p_.q_stride.at(b_, h_, i0_, 0), p_.q_stride, rows_, p_.key_dim,
              static_cast<float>(p_.scale * kLog2e), w_.q, p_.key_dim);
  }

  // K^T (Dk, ld_kt) of keys [j0, j0 + cols).
  void pack_keys(std::int64_t j0, std::int64_t cols) {
    pack_transposed(p_.k + p_.k_stride.at(b_, kvh_, j0, 0), p_.k_stride, cols, p_.key_dim, w_.kt, plan_.ld_kt);
  }

  // Whether every row of block q sees every key of [j0, j0 + cols), with no dense
  // or bias term: its tile needs no masking.
  bool inside(const QueryBlock& q, std::int64_t j0, std::int64_t cols) const {
    return j0 >= mask_.keys || (!elementwise_ && q.keys.covers(j0, cols));  // appended keys are all allowed
  }

  // S (rows, width) of the task's rows [r0, r0 + rows) against keys [j0, j0 + cols),
  // from the packed K^T, width = cols rounded up to the lanes: scores where allowed
  // (plus bias), -inf elsewhere and in the padding; no masking when inside. Returns
  // the width.
  std::int64_t scores(std::int64_t r0, std::int64_t rows, std::int64_t j0, std::int64_t cols, bool inside) {
    const std::int64_t ld_s = plan_.ld_s, width = round_up(cols, plan_.lanes);
    fused_scores(w_.q + r0 * p_.key_dim, p_.key_dim, w_.kt, plan_.ld_kt, w_.s, rows, p_.key_dim, width, ld_s);
    for (std::int64_t r = 0; r < rows; ++r) std::fill(w_.s + r * ld_s + cols, w_.s + r * ld_s + width, kNegInf);
    if (inside) return width;
    mask_score_tile(mask_, {b_, h_, i0_ + r0, rows, j0, cols, &w_.keys[static_cast<std::size_t>(r0)], w_.s, ld_s,
                            kLog2e});
    return width;
  }

  bool kept(std::int64_t r, std::int64_t j) const {
    const auto index = static_cast<std::uint64_t>((row0_ + r) * p_.keys + j);
    return dropout_keeps(p_.dropout.seed, index, p_.dropout.p);
  }

  // Reads one float of each cache line of the tile's K and V rows, just before
  // they are packed. Loads with nothing else between them, in address order, are
  // in flight many at a time and the hardware prefetchers follow them; the
  // packing's own loads, eight rows at a time between shuffles and stores, waited
  // on memory. Measured on Zen 4, packing one K tile (128 keys, D = 128, 8 heads,
  // caches flushed): 8.7 us, 2.1 with its rows read first; 8.2 with the rows
  // prefetched into L2 a tile ahead (the one before), 5.5 with them prefetched
  // during the tile's last query block, which cost as much elsewhere. The whole
  // (B=1, H=8, L=2048, D=128, 2 threads, 4 alternated runs of medians of 7,
  // GFLOP/s), K and V read first against prefetched a tile ahead: 208.8 to 211.2
  // against 207.2 to 210.2.
  void warm_tile(std::int64_t j0, std::int64_t cols) const {
    std::uint32_t seen = 0;
    if (p_.k_stride.j == 1)
      seen ^= read_lines(p_.k + p_.k_stride.at(b_, kvh_, j0, 0), p_.k_stride.i, cols, p_.key_dim);
    if (p_.v_stride.j == 1)
      seen ^= read_lines(p_.v + p_.v_stride.at(b_, kvh_, j0, 0), p_.v_stride.i, cols, p_.value_dim);
    volatile std::uint32_t sink = seen;  // the loads are the point: keep them
    (void)sink;
  }

  // The bits of one float per cache line of `cols` rows of `dim` floats, XORed:
  // integer operations, whose one-cycle chain does not hold the loads back as a
  // chain of float additions would.
  static std::uint32_t read_lines(const float* rows, std::int64_t row_stride, std::int64_t cols, std::int64_t dim) {
    std::uint32_t seen = 0;
    if (dim <= 0) return seen;
    for (std::int64_t c = 0; c < cols; ++c) {
      const float* row = rows + c * row_stride;
      for (std::int64_t at = 0; at < dim; at += kCacheLineFloats) seen ^= std::bit_cast<std::uint32_t>(row[at]);
      seen ^= std::bit_cast<std::uint32_t>(row[dim - 1]);  // rows need not start on a line
    }
    return seen;
  }

  // V (cols, ld_v) of the tile, packed: see kRowSkew.
  const float* values(std::int64_t j0, std::int64_t cols) {
    pack_rows(p_.v + p_.v_stride.at(b_, kvh_, j0, 0), p_.v_stride, cols, p_.value_dim, 1.0f, w_.v, plan_.ld_v);
    return w_.v;
  }

  void forward_tile(std::int64_t j0, std::int64_t cols) {
    warm_tile(j0, cols);
    pack_keys(j0, cols);
    const float* v = values(j0, cols);
    for (std::int64_t g = 0; g < blocks_; ++g) {
      const QueryBlock& q = blocks_at_[static_cast<std::size_t>(g)];
      if (!touches(q, j0, cols)) continue;
      if (inside(q, j0, cols)) {
        rows_tile(q.r0, q.rows, j0, cols, v, true);
      } else {
        edge_tile(q, j0, cols, v);
      }
    }
  }

  // A tile that the mask cuts through for block q, in parts of kEdgeRows rows
  // (for_each_part_seeing): under a causal mask that skips most of the diagonal
  // tile's masked triangle, whose rows would add nothing to m, l or O.
  void edge_tile(const QueryBlock& q, std::int64_t j0, std::int64_t cols, const float* v) {
    for_each_part_seeing(&w_.keys[static_cast<std::size_t>(q.r0)], q.rows, j0, cols, kEdgeRows, kTilePanelRows,
                         [&](std::int64_t lo, std::int64_t hi, std::int64_t part_cols) {
                           rows_tile(q.r0 + lo, hi - lo, j0, part_cols, v, false);
                         });
  }

  // The task's rows [r0, r0 + rows) against keys [j0, j0 + cols): S, the online
  // softmax step, O = O alpha + P V.
  void rows_tile(std::int64_t r0, std::int64_t rows, std::int64_t j0, std::int64_t cols, const float* v,
                 bool inside) {
    const std::int64_t width = scores(r0, rows, j0, cols, inside);
    fused_softmax_step(w_.s, rows, width, plan_.ld_s, w_.m + r0, w_.l + r0, w_.alpha + r0, w_.sum + r0);
    // Dropout after the sum: the denominator is the undropped softmax's.
    if (p_.dropout.p > 0.0)
      for (std::int64_t r = 0; r < rows; ++r)
        for (std::int64_t c = 0; c < cols; ++c)
          w_.s[r * plan_.ld_s + c] *= kept(r0 + r, j0 + c) ? plan_.keep_scale : 0.0f;
    fused_pv(w_.s, plan_.ld_s, v, plan_.ld_v, w_.o + r0 * plan_.ld_o, w_.alpha + r0, rows, cols, plan_.ld_o);
  }

  // out = O / l, lse = (m + log2 l) ln 2; a row with nothing allowed (l = 0) is
  // zeros, -inf. alpha keeps lse in units of log2 e for write_weights.
  void finish() {
    for (std::int64_t r = 0; r < rows_; ++r) {
      const float l = w_.l[r];
      const bool empty = l == 0.0f;
      const float inv = empty ? 0.0f : 1.0f / l;
      float* out = p_.out + p_.out_stride.at(b_, h_, i0_ + r, 0);
      for (std::int64_t d = 0; d < p_.value_dim; ++d) out[d * p_.out_stride.j] = w_.o[r * plan_.ld_o + d] * inv;
      w_.alpha[r] = empty ? kNegInf : w_.m[r] + std::log2(l);
      p_.lse[row0_ + r] = static_cast<float>(w_.alpha[r] * kLn2);
    }
  }

  // The exact normalised weights 2^(s - lse / ln 2) of the task's rows,
  // recomputed from the saved lse; zeros where masked.
  void write_weights() {
    const std::int64_t Lk = p_.keys;
    for (std::int64_t r = 0; r < rows_; ++r) std::fill_n(p_.weights + (row0_ + r) * Lk, Lk, 0.0f);
    for_each_tile([&](std::int64_t j0, std::int64_t cols) {
      pack_keys(j0, cols);
      for (std::int64_t g = 0; g < blocks_; ++g) {
        const QueryBlock& q = blocks_at_[static_cast<std::size_t>(g)];
        if (!touches(q, j0, cols)) continue;
        scores(q.r0, q.rows, j0, cols, inside(q, j0, cols));
        for (std::int64_t r = 0; r < q.rows; ++r) {
          const std::int64_t row = q.r0 + r;
          const float lse2 = w_.alpha[row];
          if (lse2 == kNegInf) continue;
          float* out = p_.weights + (row0_ + row) * Lk + j0;
          for (std::int64_t c = 0; c < cols; ++c) {
            const float softmax = std::exp2(w_.s[r * plan_.ld_s + c] - lse2);
            const bool dropped = p_.dropout.p > 0.0 && !kept(row, j0 + c);
            out[c] = p_.weights_before_dropout || p_.dropout.p == 0.0 ? softmax
                     : dropped                                         ? 0.0f
                                                                       : softmax * plan_.keep_scale;
          }
        }
      }
    });
  }

  const SdpaParams& p_;
  const Plan& plan_;
  Scratch& w_;
  const MaskView& mask_;
  std::int64_t b_ = 0, h_ = 0, kvh_ = 0, i0_ = 0, rows_ = 0, row0_ = 0;
  std::int64_t first_ = 0, last_ = 0;
  std::array<QueryBlock, kMaxBlocksPerTask> blocks_at_{};
  std::int64_t blocks_ = 0;
  bool elementwise_ = false;
};

}  // namespace

FusedTiles fused_tiles(std::int64_t key_dim, std::int64_t value_dim, std::int64_t l1_bytes,
                       std::int64_t l2_bytes) {
  const auto f = static_cast<std::int64_t>(sizeof(float));
  const std::int64_t dk = std::max<std::int64_t>(key_dim, 1), dv = std::max<std::int64_t>(value_dim, 1);
  // Bc: the products keep a column chunk of K^T or V in L1 (its depth by two
  // vectors; AVX-512's four-vector chunks are twice that, partly in L2) while the
  // query rows stream past, so the tiles themselves need only L2. Larger tiles
  // load, rescale and store O, and run the softmax step's per-row work, once per
  // more keys: four times the keys whose K^T or V would fill L1, Dk = Dv = 64 256
  // (the cap), 128 256, 256 128. Measured on Zen 4 (B=1, H=8, L=2048, 2 threads,
  // alternated runs of medians of 7, K and V read before packing, GFLOP/s): D=128
  // 256 against 128, 212.5 to 213.8 against 208.4 to 209.8 (3 runs), causal 205.0
  // and 207.2 against 203.1 and 205.1 (2 runs); D=256 128 (with Br 102, what the
  // L2 budget below then leaves) against 64, 207.6 to 213.2 against 205.5 to 206.1,
  // causal 201.6 to 204.2 against 198.5 to 200.5. On Zen 3 (V packed, medians of 7 to 9 alternated runs): D=128 Bc = 128
  // against 64 (V in place), L=2048 143.9 against 132.2, L=8192 139.6 against
  // 132.7, causal L=2048 145.3 against 136.5, 256 no faster; D=64 256 against 128,
  // L=4096 132.2 against 129.7, causal L=2048 126.8 against 120.4; D=32 256 against
  // 128, 110.9 against 104.4.
  std::int64_t bc = 4 * l1_bytes / (f * std::max(dk, dv)) / kTileAlign * kTileAlign;
  bc = std::clamp(bc, kTileAlign, kTileCap);
  // Br: what a task keeps, Q (Br, Dk), O (Br, Dv), S (Br, Bc), with the K^T and V
  // tiles, fits in L2, up to 120 rows: each column chunk of K^T or V in L1
  // then serves that many rows. Measured on Zen 3 (B=1, H=8, 2 threads, medians of
  // 5 to 15 alternated runs, GFLOP/s): 120 against 60, D=64 L=2048 126.4 against
  // 119.3, L=4096 130.7 against 123.3 (1 thread 67.9 against 64.8), D=128 L=2048
  // 127.0 against 121.7; 180 and 240 no faster. The tiles a causal mask cuts
  // through run in parts (edge_tile), so larger blocks cost it little. A multiple
  // of the tile product's 6-row block, so that no smaller block runs: 60 against 64
  // (10 blocks and one of 4 rows), D=128 L=2048 145.1 against 139.7.
  const std::int64_t room = l2_bytes / f - bc * (dk + dv);
  std::int64_t br = room > 0 ? room / (dk + dv + bc) / kRowAlign * kRowAlign : 0;
  br = std::clamp(br, kRowAlign, kQueryRowCap);
  return {br, bc};
}

std::int64_t fused_task_block_cap(std::int64_t query_rows, std::int64_t key_dim, std::int64_t value_dim,
                                  std::int64_t l2_bytes) {
  // A task revisits its blocks' Q and O rows at every key tile: as many blocks as
  // L2 holds their Q and O, to the nearest. Measured on Zen 4 (1 MiB L2; B=1, H=8,
  // 2 threads, 3 alternated runs of medians of 5, GFLOP/s), 6 blocks against 4:
  // D=128 L=2048 208.9 to 211.1 against 202.1 to 207.3, L=8192 209.5 to 210.3
  // against 205.4 to 207.1; D=64 L=2048 202.5 to 203.3 against 195.9 to 201.6; 8
  // as fast as 6 (but for one disturbed round). At D=128 L2 holds 8.5 blocks, and
  // 9 against 8 (Bc = 256, 4 to 5 alternated runs) gave L=2048 207.8 to 215.0
  // (median 212.5) against 207.0 to 211.6 (209.9): its 18 blocks a head go in two
  // tasks, not three, each packing every key tile; L=4096 212.8 to 213.6 against
  // 211.9 to 212.9, L=8192 213.5 to 215.1 against 212.7 to 214.1. At D=64, 16
  // against 8, within the noise. On Zen 3 (512 KiB), D=128, 4 blocks were the best,
  // and at D=64 6 or 8 no faster than 4. The tiles that share L2 with them are
  // left out, as the measurements allow; so are threads that share a core's L2
  // (SMT), which the machines measured did not have.
  const std::int64_t block_bytes = std::max<std::int64_t>(query_rows, 1) *
                                   (std::max<std::int64_t>(key_dim, 1) + std::max<std::int64_t>(value_dim, 1)) *
                                   std::int64_t{sizeof(float)};
  return std::clamp<std::int64_t>((l2_bytes + block_bytes / 2) / block_bytes, 1, kMaxBlocksPerTask);
}

std::int64_t fused_blocks_per_task(std::int64_t query_blocks, int workers, std::int64_t cap) {
  // Enough tasks that the dynamic schedule can even out the threads' loads: at
  // least 8 per worker, or every block its own task.
  const std::int64_t per_task = query_blocks / (8 * std::max(workers, 1));
  return std::clamp<std::int64_t>(per_task, 1, std::clamp<std::int64_t>(cap, 1, kMaxBlocksPerTask));
}

std::int64_t l2_cache_bytes() {
  static const std::int64_t bytes = [] {
#ifdef _SC_LEVEL2_CACHE_SIZE  // glibc's
    const long reported = sysconf(_SC_LEVEL2_CACHE_SIZE);
    if (reported > 0) return static_cast<std::int64_t>(reported);
#endif
    return kL2Bytes;
  }();
  return bytes;
}

std::string fused_describe(const SdpaParams& p) {
  const FusedTiles t = fused_tiles(p.key_dim, p.value_dim);
  return std::string(fused_target_name()) + " via Highway, Br=" + std::to_string(t.query_rows) +
         ", Bc=" + std::to_string(t.key_cols);
}

void sdpa_fused(const SdpaParams& p) {
  if (p.batch == 0 || p.q_heads == 0 || p.queries == 0) return;
  const FusedTiles tiles = fused_tiles(p.key_dim, p.value_dim);
  const int workers = num_threads();
  Plan plan;
  plan.br = tiles.query_rows;
  plan.bc = tiles.key_cols;
  const std::int64_t query_blocks = (p.queries + plan.br - 1) / plan.br;
  plan.blocks_per_task =
      fused_blocks_per_task(p.batch * p.q_heads * query_blocks, workers,
                            fused_task_block_cap(plan.br, p.key_dim, p.value_dim, l2_cache_bytes()));
  plan.task_rows = plan.br * plan.blocks_per_task;
  plan.lanes = fused_lanes();
  plan.ld_s = round_up(plan.bc, plan.lanes);
  // K^T and V packed with rows kRowSkew longer than their width (scratch_buffers.hpp).
  // Measured on Zen 3, K^T (B=1, H=8, L=2048, 1 thread, mean of 6 runs): D=64 62.2
  // against 59.0 GFLOP/s, D=128 63.3 both. V packed so, rather than read where it
  // lies with rows 256 or 512 bytes apart (2 threads, Bc = 128, medians of 9
  // alternated runs): D=64 L=2048 137.4 against 131.8, L=4096 129.7 against 125.6;
  // D=128 L=2048 143.9 against 138.4.
  plan.ld_kt = plan.ld_s + kRowSkew;
  plan.ld_o = round_up(std::max<std::int64_t>(p.value_dim, 1), plan.lanes);
  plan.ld_v = plan.ld_o + kRowSkew;
  plan.query_tasks = (p.queries + plan.task_rows - 1) / plan.task_rows;
  plan.group = kv_group(p.q_heads, p.kv_heads);
  plan.keep_scale = p.dropout.p < 1.0 ? static_cast<float>(1.0 / (1.0 - p.dropout.p)) : 0.0f;

  const std::int64_t tasks = p.batch * p.q_heads * plan.query_tasks;
  std::vector<Scratch> scratch;
  for (int w = 0; w < workers; ++w) scratch.push_back(make_scratch(p, plan));
  parallel_for(tasks, [&](std::int64_t task, int worker) {
    BlockTask(p, plan, scratch[static_cast<std::size_t>(worker)], task).run();
  });
}

}  // namespace attn::detail
