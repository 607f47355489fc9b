// Optimisers over a module's named parameters, with PyTorch's update rules, so that
// a training step in attn is the step torch.optim would take.
//
//   attn::optim::Adam adam(model.named_parameters(), {.lr = 1e-3});
//   auto grads = model.backward(dy);  // grads.params: the names of named_parameters()
//   adam.step(grads.params);          // updates the parameters in place
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "attn/tensor.hpp"

namespace attn::optim {

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

// torch.optim.Adam's arguments (amsgrad, maximize and the foreach/fused switches
// left out). weight_decay adds weight_decay * p to the gradient, as Adam does
// (not AdamW's decoupled decay).
struct AdamOptions {
  double lr = 1e-3;
  double beta1 = 0.9, beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;
};

// Adam (Kingma and Ba), step for step as torch.optim.Adam computes it:
//   m = beta1 m + (1 - beta1) g;  v = beta2 v + (1 - beta2) g^2
//   p -= lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
// The parameters are handles sharing storage with their module (as
// named_parameters() returns them), updated in place. Throws attn::Error for
// options out of range, as torch does.
class Adam {
 public:
  explicit Adam(NamedTensors params, AdamOptions options = {});

  // One step. `grads` holds a gradient for every parameter, by name, in any order
  // and of the parameter's shape; extra or missing names throw attn::Error naming
  // them, and nothing is updated.
  void step(const NamedTensors& grads);

  std::int64_t steps() const { return steps_; }
  const AdamOptions& options() const { return options_; }

 private:
  struct State {
    std::string name;
    Tensor param, m, v;  // m, v: the moments, of the parameter's shape
  };
  std::vector<State> states_;
  AdamOptions options_;
  std::int64_t steps_ = 0;
};

}  // namespace attn::optim
