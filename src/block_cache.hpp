// The cache behind attn/memory.hpp: blocks of at least kCachedBlockMin bytes,
// kept when their owner drops them and handed to the next request of the same
// size class.
#pragma once

#include <cstddef>
#include <memory>

namespace attn::detail {

inline constexpr std::size_t kBlockAlignment = 64;  // a cache line; AVX-512 loads need 64
// Smaller blocks come from malloc's own bins, which reuse them without new pages
// (glibc maps blocks of 128 KiB and more afresh at first, more as it adapts).
inline constexpr std::size_t kCachedBlockMin = std::size_t{256} << 10;
// Requests round up to a multiple of this, so that shapes a little apart share blocks.
inline constexpr std::size_t kCachedBlockStep = std::size_t{64} << 10;
inline constexpr std::size_t kCacheBytes = std::size_t{256} << 20;

// At least `bytes` (>= 1), aligned to kBlockAlignment, contents undefined; a
// block of kCachedBlockMin or more comes from the cache when one of its size class
// is there, and goes back to it when the last owner drops it.
std::shared_ptr<void> allocate_block(std::size_t bytes);

}  // namespace attn::detail
