// Runs attn::optim::Adam over given gradients, for the parity test against
// torch.optim.Adam (tests/python/test_adam_parity.py).
//
// Input (stdin): {"options": {"lr", "beta1", "beta2", "eps", "weight_decay"},
//                 "params": [[name, shape, data], ...],
//                 "grads": [[[name, data], ...], ...]}   (one list per step)
// Output (stdout): {"params": [[name, data], ...]} after every step.
#include <iostream>

#include <nlohmann/json.hpp>

#include "attn/attn.hpp"

using nlohmann::json;

int main() {
  try {
    const json in = json::parse(std::cin);
    const json& o = in.at("options");
    const attn::optim::AdamOptions options{.lr = o.at("lr"),
                                           .beta1 = o.at("beta1"),
                                           .beta2 = o.at("beta2"),
                                           .eps = o.at("eps"),
                                           .weight_decay = o.at("weight_decay")};
    attn::optim::NamedTensors params;
    for (const json& p : in.at("params"))
      params.emplace_back(p.at(0).get<std::string>(),
                          attn::Tensor::from(p.at(1).get<attn::Shape>(), p.at(2).get<std::vector<float>>()));
    attn::optim::Adam adam(params, options);
    for (const json& step : in.at("grads")) {
      attn::optim::NamedTensors grads;
      for (const json& g : step) {
        const std::string name = g.at(0);
        const auto it = std::find_if(params.begin(), params.end(), [&](const auto& p) { return p.first == name; });
        const attn::Shape shape = it == params.end() ? attn::Shape{} : it->second.shape();
        grads.emplace_back(name, attn::Tensor::from(shape, g.at(1).get<std::vector<float>>()));
      }
      adam.step(grads);
    }
    json out = {{"params", json::array()}};
    for (const auto& [name, t] : params) out["params"].push_back({name, t.to_vector()});
    std::cout << out.dump() << "\n";
  } catch (const std::exception& e) {
    std::cerr << "adam_case: " << e.what() << "\n";
    return 1;
  }
}
