// What the test tools that read a case as JSON share (mha_case.cpp, grad_case.cpp):
// tensors in and out, and a MultiHeadAttention built from torch's constructor
// arguments and loaded with torch's parameters.
// A tensor is {"shape": [...], "data": [...], "dtype": "float32" | "bool"}.
#pragma once

#include <cstdint>
#include <vector>

#include <nlohmann/json.hpp>

#include "attn/attn.hpp"

namespace attn::test::cases {

using nlohmann::json;

inline Tensor float_tensor(const json& j) {
  return Tensor::from(j.at("shape").get<Shape>(), j.at("data").get<std::vector<float>>());
}

inline BoolTensor bool_tensor(const json& j) {
  const auto values = j.at("data").get<std::vector<int>>();
  BoolTensor t = BoolTensor::zeros(j.at("shape").get<Shape>());
  if (static_cast<std::int64_t>(values.size()) != t.numel()) throw Error("mask data does not match its shape");
  for (std::size_t i = 0; i < values.size(); ++i) t.data()[i] = values[i] != 0;
  return t;
}

// null: no mask; bool: true = blocked, as torch's module masks; float: added.
inline MaskTensor mask_tensor(const json& j) {
  if (j.is_null()) return std::monostate{};
  if (j.at("dtype") == "bool") return bool_tensor(j);
  return float_tensor(j);
}

inline json to_json(const Tensor& t) { return {{"shape", t.shape()}, {"data", t.to_vector()}}; }

// {"options": {embed_dim, num_heads, bias, add_bias_kv, add_zero_attn, kdim, vdim,
// batch_first}, "params": {name: tensor}}: the module in eval mode, with every
// parameter loaded by torch's name.
inline MultiHeadAttention mha_from_case(const json& c) {
  const json& o = c.at("options");
  MultiHeadAttentionOptions options;
  options.embed_dim = o.at("embed_dim");
  options.num_heads = o.at("num_heads");
  options.bias = o.at("bias");
  options.add_bias_kv = o.at("add_bias_kv");
  options.add_zero_attn = o.at("add_zero_attn");
  if (!o.at("kdim").is_null()) options.kdim = o.at("kdim").get<std::int64_t>();
  if (!o.at("vdim").is_null()) options.vdim = o.at("vdim").get<std::int64_t>();
  options.batch_first = o.at("batch_first");
  MultiHeadAttention mha(options);
  mha.eval();
  const json& params = c.at("params");
  for (const auto& [name, tensor] : mha.named_parameters()) tensor.copy_from(float_tensor(params.at(name)));
  if (params.size() != mha.named_parameters().size()) throw Error("parameter names differ from torch's");
  return mha;
}

// The case's key_padding_mask, attn_mask and is_causal.
inline MultiHeadForwardOptions mha_masks_from_case(const json& c) {
  MultiHeadForwardOptions fo;
  fo.key_padding_mask = mask_tensor(c.value("key_padding_mask", json()));
  fo.attn_mask = mask_tensor(c.value("attn_mask", json()));
  fo.is_causal = c.at("is_causal");
  return fo;
}

}  // namespace attn::test::cases
