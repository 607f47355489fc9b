// A seeded random number generator for tensors, parameters and dropout.
//
// Streams are reproducible for a given seed on every platform: the engine is
// std::mt19937_64 and the distributions are written here (the standard library's
// distributions differ between implementations).
#pragma once

#include <cstdint>
#include <random>

namespace attn {

class Rng {
 public:
  explicit Rng(std::uint64_t seed = 0) : engine_(seed) {}

  std::uint64_t next_u64() { return engine_(); }
  // Uniform in [0, 1) with 53 random bits.
  double uniform() { return static_cast<double>(engine_() >> 11) * 0x1.0p-53; }
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  // Standard normal by Box-Muller; the second value of each pair is kept.
  double normal();
  double normal(double mean, double stddev) { return mean + stddev * normal(); }

 private:
  std::mt19937_64 engine_;
  bool has_spare_ = false;
  double spare_ = 0.0;
};

}  // namespace attn
