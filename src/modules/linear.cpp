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

Tensor Linear::forward(const Tensor& x) const {
  saved_x_ = x;
  return linear(x, weight, bias);
}

LinearModuleGrads Linear::backward(const Tensor& grad_output) const {
  if (!saved_x_.defined())
    detail::fail("Linear.backward", "there is no forward to differentiate: call forward first");
  LinearGrads g = linear_backward(saved_x_, weight, grad_output, bias.defined());
  LinearModuleGrads grads;
  grads.input = g.dx;
  grads.params.emplace_back("weight", g.dweight);
  if (bias.defined()) grads.params.emplace_back("bias", g.dbias);
  return grads;
}

NamedParameters Linear::named_parameters(const std::string& prefix) const {
  NamedParameters params{{prefix + "weight", weight}};
  if (bias.defined()) params.emplace_back(prefix + "bias", bias);
  return params;
}

}  // namespace attn
