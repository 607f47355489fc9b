// The fused CPU kernel of scaled dot-product attention (fp32 storage, fp32
// accumulation): tiles of queries and keys, an online softmax, and scores that
// never leave a per-worker tile. Tasks of a few query blocks of one (b, h), run
// through parallel_for; every output element is written by one task in a fixed
// order that does not depend on the grouping, so results are bitwise the same for
// any thread count.
#pragma once

#include <cstdint>
#include <string>

#include "kernels/params.hpp"

namespace attn::detail {

// The cache sizes the tiles are chosen for: AMD Zen 3's per-core L1d and L2,
// and the L1d of most x86 cores since Haswell.
inline constexpr std::int64_t kL1Bytes = 32 * 1024;
inline constexpr std::int64_t kL2Bytes = 512 * 1024;

struct FusedTiles {
  std::int64_t query_rows = 0;  // Br: query rows per task
  std::int64_t key_cols = 0;    // Bc: keys per tile
};

// Br and Bc for head dims Dk, Dv; pure, so that it can be tested.
FusedTiles fused_tiles(std::int64_t key_dim, std::int64_t value_dim, std::int64_t l1_bytes = kL1Bytes,
                       std::int64_t l2_bytes = kL2Bytes);

// The query blocks of Br rows that one task may take: as many as an L2 of
// `l2_bytes` holds their Q and O, to the nearest, 1 to 16.
std::int64_t fused_task_block_cap(std::int64_t query_rows, std::int64_t key_dim, std::int64_t value_dim,
                                  std::int64_t l2_bytes);

// Query blocks per task, for `query_blocks` blocks in all (B H ceil(Lq / Br)) and
// `workers` threads: up to `cap` share each packed key tile, while every worker
// gets at least 8 tasks. Any grouping gives the same bits, so the cap may follow
// the machine's caches where the tiles may not.
std::int64_t fused_blocks_per_task(std::int64_t query_blocks, int workers, std::int64_t cap);

// This machine's per-core L2, as the C library reports it (kL2Bytes if it does not).
std::int64_t l2_cache_bytes();

// "AVX2 via Highway, Br=120, Bc=256": the Highway target that runs and the tiles for p.
std::string fused_describe(const SdpaParams& p);

// The same contract as sdpa_reference, MaskFill::neg_inf only.
void sdpa_fused(const SdpaParams& p);

}  // namespace attn::detail
