// The dropout decision for one attention weight, shared by every kernel so that
// the kept set depends only on (seed, position), never on tiling or threads.
#pragma once

#include <cstdint>

namespace attn::detail {

// SplitMix64's finaliser: a bijection of 64-bit words with good avalanche.
constexpr std::uint64_t mix64(std::uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

// Whether the weight at flat index `index` of the (B, H, Lq, Lk) weights is kept.
constexpr bool dropout_keeps(std::uint64_t seed, std::uint64_t index, double p) {
  const std::uint64_t bits = mix64(mix64(seed) ^ (index + 0x9e3779b97f4a7c15ULL));
  const double uniform = static_cast<double>(bits >> 11) * 0x1.0p-53;  // [0, 1)
  return uniform >= p;
}

}  // namespace attn::detail
