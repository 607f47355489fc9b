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
#include "case_json.hpp"

using nlohmann::json;

using namespace attn::test::cases;

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: mha_case CASE.json\n";
    return 2;
  }
  try {
    std::ifstream in(argv[1]);
    const json c = json::parse(in);
    attn::MultiHeadAttention mha = mha_from_case(c);

    attn::MultiHeadForwardOptions fo = mha_masks_from_case(c);
    fo.need_weights = c.at("need_weights");
    fo.average_attn_weights = c.at("average_attn_weights");
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
