// Parameter initialisation as torch.nn.init does it (same distributions, not the
// same random stream).
#pragma once

#include <cmath>

#include "attn/rng.hpp"
#include "attn/tensor.hpp"

namespace attn::detail {

inline Tensor uniform(const Shape& shape, double bound, Rng& rng) {
  Tensor t = Tensor::empty(shape);
  for (std::int64_t i = 0; i < t.numel(); ++i) t.data()[i] = static_cast<float>(rng.uniform(-bound, bound));
  return t;
}

// torch's fan_in and fan_out: dims 1 and 0, times the product of the rest.
inline double fan_sum(const Shape& shape) {
  double receptive = 1;
  for (std::size_t d = 2; d < shape.size(); ++d) receptive *= static_cast<double>(shape[d]);
  return (static_cast<double>(shape[0]) + static_cast<double>(shape[1])) * receptive;
}

// nn.init.xavier_uniform_: U(-a, a) with a = sqrt(6 / (fan_in + fan_out)).
inline Tensor xavier_uniform(const Shape& shape, Rng& rng) {
  const double fans = fan_sum(shape);
  return uniform(shape, fans > 0 ? std::sqrt(6.0 / fans) : 0.0, rng);
}

// nn.init.xavier_normal_: N(0, 2 / (fan_in + fan_out)).
inline Tensor xavier_normal(const Shape& shape, Rng& rng) {
  const double fans = fan_sum(shape);
  const double stddev = fans > 0 ? std::sqrt(2.0 / fans) : 0.0;
  Tensor t = Tensor::empty(shape);
  for (std::int64_t i = 0; i < t.numel(); ++i) t.data()[i] = static_cast<float>(rng.normal(0.0, stddev));
  return t;
}

// nn.Linear's default: U(-1/sqrt(in), 1/sqrt(in)) for weight and bias.
inline double linear_bound(std::int64_t in_features) {
  return in_features > 0 ? 1.0 / std::sqrt(static_cast<double>(in_features)) : 0.0;
}

}  // namespace attn::detail
