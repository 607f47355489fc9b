// Adam's update, in the order torch.optim.Adam's single-tensor path computes it, so
// that float32 results agree with torch's to rounding.
#include "attn/optim.hpp"

#include <cmath>
#include <map>
#include <string>

#include "attn/error.hpp"

namespace attn::optim {
namespace {

void check_range(bool ok, const std::string& what) {
  if (!ok) throw Error("Adam: " + what);
}

}  // namespace

Adam::Adam(NamedTensors params, AdamOptions options) : options_(options) {
  check_range(options.lr >= 0.0, "invalid learning rate lr = " + std::to_string(options.lr) + " (must be >= 0)");
  check_range(options.eps >= 0.0, "invalid eps = " + std::to_string(options.eps) + " (must be >= 0)");
  check_range(options.beta1 >= 0.0 && options.beta1 < 1.0,
              "invalid beta1 = " + std::to_string(options.beta1) + " (must be in [0, 1))");
  check_range(options.beta2 >= 0.0 && options.beta2 < 1.0,
              "invalid beta2 = " + std::to_string(options.beta2) + " (must be in [0, 1))");
  check_range(options.weight_decay >= 0.0,
              "invalid weight_decay = " + std::to_string(options.weight_decay) + " (must be >= 0)");
  std::map<std::string, int> seen;
  for (auto& [name, param] : params) {
    if (!param.defined()) continue;  // an absent parameter (bias=False)
    if (seen[name]++ > 0) throw Error("Adam: parameter '" + name + "' is listed twice");
    if (!param.is_contiguous())
      throw Error("Adam: parameter '" + name + "' of shape " + param.shape_string() +
                  " is not contiguous; pass the module's own parameters");
    states_.push_back({name, param, Tensor::zeros(param.shape()), Tensor::zeros(param.shape())});
  }
}

void Adam::step(const NamedTensors& grads) {
  // Every check before any update: a failed step leaves the parameters as they were.
  std::map<std::string, const Tensor*> by_name;
  for (const auto& [name, grad] : grads) {
    if (!grad.defined()) continue;
    if (!by_name.emplace(name, &grad).second) throw Error("Adam.step: gradient '" + name + "' is given twice");
  }
  std::vector<const Tensor*> ordered;
  for (const State& s : states_) {
    const auto it = by_name.find(s.name);
    if (it == by_name.end()) throw Error("Adam.step: no gradient for parameter '" + s.name + "'");
    if (it->second->shape() != s.param.shape())
      throw Error("Adam.step: gradient '" + s.name + "' has shape " + it->second->shape_string() +
                  ", the parameter " + s.param.shape_string());
    ordered.push_back(it->second);
    by_name.erase(it);
  }
  if (!by_name.empty()) throw Error("Adam.step: gradient '" + by_name.begin()->first + "' names no parameter");

  ++steps_;
  const double t = static_cast<double>(steps_);
  const double bias1 = 1.0 - std::pow(options_.beta1, t);
  const double bias2_sqrt = std::sqrt(1.0 - std::pow(options_.beta2, t));
  const auto step_size = static_cast<float>(options_.lr / bias1);
  // 1 - beta is taken in double and then rounded, as torch passes it to its float
  // kernels; 1.0f - float(beta2) differs from it by 1e-5 relative at beta2 = 0.999.
  const auto b1 = static_cast<float>(options_.beta1), b2 = static_cast<float>(options_.beta2);
  const auto one_minus_b1 = static_cast<float>(1.0 - options_.beta1);
  const auto one_minus_b2 = static_cast<float>(1.0 - options_.beta2);
  const auto eps = static_cast<float>(options_.eps), decay = static_cast<float>(options_.weight_decay);
  const auto b2_sqrt = static_cast<float>(bias2_sqrt);
  for (std::size_t i = 0; i < states_.size(); ++i) {
    State& s = states_[i];
    const std::vector<float> g_values = ordered[i]->to_vector();  // the grad in logical order
    float* p = s.param.data();
    float* m = s.m.data();
    float* v = s.v.data();
    for (std::size_t j = 0; j < g_values.size(); ++j) {
      const float g = decay != 0.0f ? g_values[j] + decay * p[j] : g_values[j];
      m[j] = m[j] * b1 + one_minus_b1 * g;  // exp_avg.mul_(beta1).add_(grad, alpha=1 - beta1)
      v[j] = v[j] * b2 + one_minus_b2 * g * g;
      const float denom = std::sqrt(v[j]) / b2_sqrt + eps;
      p[j] -= step_size * m[j] / denom;
    }
  }
}

}  // namespace attn::optim
