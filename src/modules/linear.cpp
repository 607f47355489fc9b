#include "attn/modules.hpp"
#include "modules/init.hpp"
#include "ops/check.hpp"

namespace attn {

Linear::Linear(std::int64_t in_features, std::int64_t out_features, bool has_bias, Rng& rng) {
  if (in_features < 0 || out_features < 0)
    detail::fail("Linear", "in_features and out_features must be >= 0, got " +
                               std::to_string(in_features) + " and " + std::to_string(out_features));
  const double bound = detail::linear_bound(in_features);
  weight = detail::uniform({out_features, in_features}, bound, rng);
  if (has_bias) bias = detail::uniform({out_features}, bound, rng);
}

Tensor Linear::forward(const Tensor& x) const { return linear(x, weight, bias); }

NamedParameters Linear::named_parameters(const std::string& prefix) const {
  NamedParameters params{{prefix + "weight", weight}};
  if (bias.defined()) params.emplace_back(prefix + "bias", bias);
  return params;
}

}  // namespace attn
