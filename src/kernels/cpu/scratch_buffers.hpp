// A worker's scratch for the fused kernels: one aligned allocation carved into
// float buffers, each starting on a cache line so that no two share one.
#pragma once

#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <utility>

#include "hwy/aligned_allocator.h"

namespace attn::detail {

inline constexpr std::int64_t kCacheLineBytes = 64;
inline constexpr std::int64_t kCacheLineFloats = kCacheLineBytes / sizeof(float);

// Allocates the buffers, each {where its pointer goes, its floats}, and points them
// into the returned memory, which owns them all.
inline hwy::AlignedFreeUniquePtr<float[]> carve_buffers(std::initializer_list<std::pair<float**, std::int64_t>> buffers) {
  const auto lines = [](std::int64_t floats) {
    return (std::max<std::int64_t>(floats, 1) + kCacheLineFloats - 1) / kCacheLineFloats * kCacheLineFloats;
  };
  std::int64_t total = 0;
  for (const auto& b : buffers) total += lines(b.second);
  hwy::AlignedFreeUniquePtr<float[]> memory = hwy::AllocateAligned<float>(static_cast<std::size_t>(total));
  float* at = memory.get();
  for (const auto& [slot, floats] : buffers) {
    *slot = at;
    at += lines(floats);
  }
  return memory;
}

}  // namespace attn::detail
