// Runs one MultiHeadAttention forward described by a JSON file, for the parity
// tests against torch.nn.MultiheadAttention (tests/python/test_mha_parity.py).
//
// Input: {"options": {...nn.MultiheadAttention arguments...},
//         "params": {name: tensor}, "query": tensor, "key": tensor, "value": tensor,
//         "key_padding_mask": tensor?, "attn_mask": tensor?, "need_weights": bool,
//         "average_attn_weights": bool, "is_causal": bool}
// where a tensor is {"shape": [...], "data": [...], "dtype": "float32" | "bool"}.
// Output: {"output": tensor, "weights": tensor?} on stdout.
#include <fstream>
#include <iostream>

#include <nlohmann/json.hpp>

#include "attn/attn.hpp"

using nlohmann::json;

namespace {

attn::Tensor float_tensor(const json& j) {
  return attn::Tensor::from(j.at("shape").get<attn::Shape>(), j.at("data").get<std::vector<float>>());
}

attn::MaskTensor mask_tensor(const json& j) {
  if (j.is_null()) return std::monostate{};
  if (j.at("dtype") == "bool") {
    const auto values = j.at("data").get<std::vector<int>>();
    attn::BoolTensor t = attn::BoolTensor::zeros(j.at("shape").get<attn::Shape>());
    if (static_cast<std::int64_t>(values.size()) != t.numel()) throw attn::Error("mask data does not match its shape");
    for (std::size_t i = 0; i < values.size(); ++i) t.data()[i] = values[i] != 0;
    return t;
  }
  return float_tensor(j);
}

json to_json(const attn::Tensor& t) {
  return {{"shape", t.shape()}, {"data", t.to_vector()}};
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: mha_case CASE.json\n";
    return 2;
  }
  try {
    std::ifstream in(argv[1]);
    const json c = json::parse(in);
    const json& o = c.at("options");
    attn::MultiHeadAttentionOptions options;
    options.embed_dim = o.at("embed_dim");
    options.num_heads = o.at("num_heads");
    options.bias = o.at("bias");
    options.add_bias_kv = o.at("add_bias_kv");
    options.add_zero_attn = o.at("add_zero_attn");
    if (!o.at("kdim").is_null()) options.kdim = o.at("kdim").get<std::int64_t>();
    if (!o.at("vdim").is_null()) options.vdim = o.at("vdim").get<std::int64_t>();
    options.batch_first = o.at("batch_first");
    attn::MultiHeadAttention mha(options);
    mha.eval();

    const json& params = c.at("params");
    for (const auto& [name, tensor] : mha.named_parameters()) tensor.copy_from(float_tensor(params.at(name)));
    if (params.size() != mha.named_parameters().size()) throw attn::Error("parameter names differ from torch's");

    attn::MultiHeadForwardOptions fo;
    fo.key_padding_mask = mask_tensor(c.value("key_padding_mask", json()));
    fo.attn_mask = mask_tensor(c.value("attn_mask", json()));
    fo.need_weights = c.at("need_weights");
    fo.average_attn_weights = c.at("average_attn_weights");
    fo.is_causal = c.at("is_causal");
    const attn::MultiHeadResult r =
        mha.forward(float_tensor(c.at("query")), float_tensor(c.at("key")), float_tensor(c.at("value")), fo);
    json out = {{"output", to_json(r.output)}};
    if (r.weights.defined()) out["weights"] = to_json(r.weights);
    std::cout << out.dump() << "\n";
  } catch (const std::exception& e) {
    std::cerr << "mha_case: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
