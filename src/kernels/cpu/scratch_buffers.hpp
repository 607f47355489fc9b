// A worker's scratch for the fused kernels: one aligned block carved into float
// buffers, each starting on a cache line so that no two share one. The block comes
// from the block cache (attn/memory.hpp), so that a call at the shape of the last
// one reuses its pages.
#pragma once

#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <utility>

#include "block_cache.hpp"

namespace attn::detail {

inline constexpr std::int64_t kCacheLineBytes = 64;
inline constexpr std::int64_t kCacheLineFloats = kCacheLineBytes / sizeof(float);
// The packed tiles' rows are a cache line longer than their padded width. The
// tile products read a chunk of two or four vectors down all rows of their b
// operand, and rows a multiple of 256 bytes apart (Bc = 128 floats, or D = 64 or
// 128) would put that chunk in a few of L1's 64 sets, their 8 ways full, so that
// any other line there evicts it.
inline constexpr std::int64_t kRowSkew = kCacheLineFloats;

// Allocates the buffers, each {where its pointer goes, its floats}, and points them
// into the returned block, which owns them all.
inline std::shared_ptr<void> carve_buffers(std::initializer_list<std::pair<float**, std::int64_t>> buffers) {
  const auto lines = [](std::int64_t floats) {
    return (std::max<std::int64_t>(floats, 1) + kCacheLineFloats - 1) / kCacheLineFloats * kCacheLineFloats;
  };
  std::int64_t total = 0;
  for (const auto& b : buffers) total += lines(b.second);
  std::shared_ptr<void> memory = allocate_block(static_cast<std::size_t>(total) * sizeof(float));
  auto* at = static_cast<float*>(memory.get());
  for (const auto& [slot, floats] : buffers) {
    *slot = at;
    at += lines(floats);
  }
  return memory;
}

}  // namespace attn::detail
