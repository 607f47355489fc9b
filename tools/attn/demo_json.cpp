#include "demo_json.hpp"

#include <fstream>
#include <stdexcept>

namespace attn::tools {

DemoRecord::DemoRecord(std::uint64_t seed) {
  root_["format"] = "attn-demo/1";
  root_["seed"] = seed;
  root_["dtype"] = "float32";
  root_["examples"] = nlohmann::ordered_json::object();
}

void DemoRecord::begin(const std::string& name, const std::string& document,
                       const std::string& title) {
  nlohmann::ordered_json example;
  example["document"] = document;
  example["title"] = title;
  example["config"] = nlohmann::ordered_json::object();
  example["tensors"] = nlohmann::ordered_json::object();
  root_["examples"][name] = std::move(example);
  current_ = name;
}

nlohmann::ordered_json& DemoRecord::current() {
  if (current_.empty()) throw std::logic_error("DemoRecord: begin() an example first");
  return root_["examples"][current_];
}

void DemoRecord::tensor(const std::string& name, const Tensor& t) {
  // float -> double is exact, and the JSON writer prints the shortest decimal
  // that reads back as the same double, so the reader gets the float32 bits.
  nlohmann::ordered_json data = nlohmann::ordered_json::array();
  for (float x : t.to_vector()) data.push_back(static_cast<double>(x));
  current()["tensors"][name] = {{"shape", t.shape()}, {"data", std::move(data)}};
}

void DemoRecord::parameters(const NamedParameters& params, const std::string& prefix) {
  for (const auto& [name, value] : params) tensor(prefix + name, value);
}

void DemoRecord::config(const std::string& key, nlohmann::ordered_json value) {
  current()["config"][key] = std::move(value);
}

void DemoRecord::write(const std::string& path) const {
  std::ofstream file(path);
  if (!file) throw std::runtime_error("cannot open " + path + " for writing");
  file << root_.dump() << '\n';
  if (!file) throw std::runtime_error("cannot write " + path);
}

}  // namespace attn::tools
