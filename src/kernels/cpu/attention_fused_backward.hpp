// The fused CPU backward of scaled dot-product attention, in FlashAttention-2's
// manner: key tiles outer, query blocks inner; the probabilities recomputed from
// the saved log-sum-exp, never an L x L matrix. Deterministic without atomics:
// a task owns the dK and dV of its keys and its own partial dQ, and the partials
// are summed in a fixed order, so that the bits do not depend on the threads.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "kernels/params.hpp"

namespace attn::detail {

struct FusedBackwardTiles {
  std::int64_t query_rows = 0;  // Br: query rows per block
  std::int64_t key_cols = 0;    // Bc: keys per tile
};

// Br and Bc for head dims Dk, Dv; pure, so that it can be tested.
FusedBackwardTiles fused_backward_tiles(std::int64_t key_dim, std::int64_t value_dim);

// The number of chunks the key tiles of each (batch, key/value head) are split
// into, each a task with its own partial dQ: enough that B Hkv chunks tasks keep
// the threads busy, from the shape alone (never the thread count), so that the
// sum of the partials, and the bits, are the same for any number of threads.
std::int64_t fused_backward_key_chunks(std::int64_t batch, std::int64_t kv_heads, std::int64_t key_tiles);

// Where the key tiles are cut into `chunks` chunks of about equal work, from each
// tile's work (tile_work.size() tiles, chunks <= tiles): chunks + 1 tile indices,
// from 0 to the number of tiles, each chunk at least one tile. Under a causal mask
// the first keys are seen by most queries, so the first chunks are shorter.
std::vector<std::int64_t> fused_backward_chunk_bounds(const std::vector<std::int64_t>& tile_work,
                                                      std::int64_t chunks);

// "AVX2 via Highway, Br=120, Bc=128, 2 key chunks".
std::string fused_backward_describe(const SdpaBackwardParams& p);

// The same contract as sdpa_backward_reference for MaskFill::neg_inf and no bias
// gradients (p.grad.dbias empty). dq, dk and dv are overwritten.
void sdpa_backward_fused(const SdpaBackwardParams& p);

}  // namespace attn::detail
