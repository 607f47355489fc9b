// The record `attn demo --json FILE` writes: every example's inputs, parameters
// (by their PyTorch names), outputs and configuration, so that another program
// (tests/python/test_demo_parity.py) can recompute each example from the same numbers.
//
//   {"format": "attn-demo/1", "seed": 0, "dtype": "float32",
//    "examples": {"doc001_dot_product": {"document": "001", "title": "...",
//                                        "config": {...},
//                                        "tensors": {"x1": {"shape": [2, 3, 4],
//                                                           "data": [row-major values]}}}}}
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "attn/modules.hpp"
#include "attn/tensor.hpp"

namespace attn::tools {

class DemoRecord {
 public:
  explicit DemoRecord(std::uint64_t seed);

  // Starts the record of one example; the calls after it add to that example.
  void begin(const std::string& name, const std::string& document, const std::string& title);
  void tensor(const std::string& name, const Tensor& t);
  // Every parameter of a module under its own name, optionally prefixed.
  void parameters(const NamedParameters& params, const std::string& prefix = "");
  void config(const std::string& key, nlohmann::ordered_json value);

  // Writes the record to `path`; throws std::runtime_error if it cannot.
  void write(const std::string& path) const;

 private:
  nlohmann::ordered_json& current();

  nlohmann::ordered_json root_;
  std::string current_;
};

}  // namespace attn::tools
