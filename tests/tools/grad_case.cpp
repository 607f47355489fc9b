// Runs one forward and backward described by a JSON file, for the gradient parity
// tests against torch autograd (tests/python/test_backward_parity.py), and prints
// the gradients with the norm of their error bound (grad_bounds.hpp, from the
// long-double oracle), from which the test takes each budget.
//
// Input: {"op": "mha", "options": {...}, "params": {name: tensor}, "query": tensor,
//         "key": tensor, "value": tensor, "key_padding_mask": tensor?,
//         "attn_mask": tensor?, "is_causal": bool, "grad_output": tensor}
//     or {"op": "sdpa", "q": tensor, "k": tensor, "v": tensor, "attn_mask": tensor?
//         (bool: true takes part; float: an additive bias), "is_causal": bool,
//         "scale": number?, "grad_output": tensor}
// with every float on dyadic_randn's grid (tests/grad_check.hpp), which the mha
// bound needs. A tensor is {"shape": [...], "data": [...], "dtype": "float32" | "bool"}.
// Output: {"output": tensor, "grads": {name: tensor}, "bound_norms": {name: ||E||}}.
// Both ops run the reference kernels, whose errors the bounds describe.
#include <cmath>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "attn/attn.hpp"
#include "case_json.hpp"
#include "grad_bounds.hpp"
#include "mha_grad_bounds.hpp"
#include "mha_oracle.hpp"

using nlohmann::json;
using namespace attn::test::cases;

namespace {

double norm(const std::vector<long double>& v) {
  long double sum = 0;
  for (long double x : v) sum += x * x;
  return static_cast<double>(std::sqrt(sum));
}

json run_mha(const json& c) {
  attn::MultiHeadAttention mha = mha_from_case(c);

  attn::MultiHeadForwardOptions fo = mha_masks_from_case(c);
  fo.need_weights = false;
  fo.kernel = attn::Kernel::reference;
  const attn::Tensor query = float_tensor(c.at("query")), key = float_tensor(c.at("key")),
                     value = float_tensor(c.at("value")), dy = float_tensor(c.at("grad_output"));
  const attn::MultiHeadResult r = mha.forward(query, key, value, fo);
  const attn::AttentionModuleGrads g = mha.backward(dy);

  const attn::test::LongDoubleMha lm(mha);
  const attn::test::LTensor qL = attn::test::widen(query), kL = attn::test::widen(key),
                            vL = attn::test::widen(value);
  attn::test::mha::Internals in;
  attn::test::mha::multi_head_attention(lm, qL, kL, vL, fo, nullptr, nullptr, {}, &in);
  const attn::test::NamedBounds bounds =
      attn::test::mha_bounds(lm, qL, kL, vL, attn::test::widen(dy), in, {}, fo.fill);

  json out = {{"output", to_json(r.output)}};
  out["grads"]["query"] = to_json(g.query);
  out["grads"]["key"] = to_json(g.key);
  out["grads"]["value"] = to_json(g.value);
  for (const auto& [name, t] : g.params) out["grads"][name] = to_json(t);
  for (const auto& [name, bound] : bounds) out["bound_norms"][name] = norm(bound);
  return out;
}

json run_sdpa(const json& c) {
  const attn::Tensor q = float_tensor(c.at("q")), k = float_tensor(c.at("k")), v = float_tensor(c.at("v")),
                     dout = float_tensor(c.at("grad_output"));
  attn::test::MaskParts parts;
  const json mask = c.value("attn_mask", json());
  if (!mask.is_null()) {
    if (mask.at("dtype") == "bool") {
      parts.structure &= attn::Mask::keep(bool_tensor(mask));
    } else {
      parts.biases.push_back(float_tensor(mask));
    }
  }
  if (c.at("is_causal")) parts.structure &= attn::Mask::causal();
  attn::SdpaOptions options;
  options.mask = parts.full();
  if (!c.at("scale").is_null()) options.scale = c.at("scale").get<double>();
  options.kernel = attn::Kernel::reference;
  const attn::AttentionResult r = attn::scaled_dot_product_attention(q, k, v, options);
  const attn::AttentionGrads g = attn::scaled_dot_product_attention_backward(
      q, k, v, r.out, r.lse, dout, options, attn::BackwardOptions{.need_bias_grad = true});

  const attn::Tensor q4 = attn::test::heads_of(q), k4 = attn::test::heads_of(k), v4 = attn::test::heads_of(v);
  const std::int64_t B = q4.size(0), H = q4.size(1), Lq = q4.size(2), Lk = k4.size(2), Dk = q4.size(3);
  const long double scale = options.scale ? static_cast<long double>(*options.scale)
                                          : 1.0L / std::sqrt(static_cast<long double>(Dk));
  const attn::test::OracleMask oracle_mask(parts, B, H, Lq, Lk);
  const attn::test::LTensor qL = attn::test::widen(q4), kL = attn::test::widen(k4),
                            vL = attn::test::widen(v4);
  const attn::test::OracleResult exact =
      attn::test::oracle_attention(qL, kL, vL, scale, oracle_mask.allowed, oracle_mask.bias);
  const attn::test::AttentionTerms t = attn::test::attention_terms(
      exact, oracle_mask, {}, attn::test::widen(attn::test::heads_of(dout)).to_vector(), vL, H, Lq,
      attn::MaskFill::neg_inf);
  const attn::test::SdpaBound bound = attn::test::sdpa_bound(t, qL.to_vector(), kL.to_vector(), Dk, scale);

  json out = {{"output", to_json(r.out)}};
  out["grads"]["q"] = to_json(g.dq);
  out["grads"]["k"] = to_json(g.dk);
  out["grads"]["v"] = to_json(g.dv);
  out["bound_norms"]["q"] = norm(bound.dq_err);
  out["bound_norms"]["k"] = norm(bound.dk_err);
  out["bound_norms"]["v"] = norm(bound.softmax.dv_err);
  if (!parts.biases.empty()) {
    out["grads"]["attn_mask"] = to_json(g.dbias.at(0));
    out["bound_norms"]["attn_mask"] = norm(attn::test::bias_bound(t, bound.softmax, parts.biases[0].shape()));
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: grad_case CASE.json\n";
    return 2;
  }
  try {
    std::ifstream in(argv[1]);
    const json c = json::parse(in);
    const std::string op = c.at("op");
    if (op != "mha" && op != "sdpa") throw attn::Error("op must be \"mha\" or \"sdpa\", got " + op);
    std::cout << (op == "mha" ? run_mha(c) : run_sdpa(c)).dump() << "\n";
  } catch (const std::exception& e) {
    std::cerr << "grad_case: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
