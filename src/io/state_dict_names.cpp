// state_dict: each module's parameters under a PyTorch module's names. The tutorials'
// multi-head modules hold one nn.Linear per projection where nn.MultiheadAttention
// packs them, so their weights and biases are row slices (views) of in_proj_weight
// and in_proj_bias, or the separate q/k/v_proj_weight when the widths differ.
#include <fmt/format.h>

#include "attn/state_dict.hpp"
#include "ops/check.hpp"

namespace attn::io {
namespace {

constexpr std::string_view kOp = "state_dict";

// The prefixes of one tutorial module's nn.Linear members; `out` is empty when it
// has no output projection.
struct Convention {
  std::string_view module;  // what the names belong to, for messages
  std::string_view q, k, v, out;
};

Convention convention_of(Names names) {
  switch (names) {
    case Names::d2l: return {"d2l's MultiHeadAttention", "W_q.", "W_k.", "W_v.", "W_o."};
    case Names::transformer_tutorial:
      return {"the Transformer tutorial's MultiHeadAttention", "wq.", "wk.", "wv.", "dense."};
    case Names::self_attention: return {"Self_Attention", "q.", "k.", "v.", ""};
    case Names::torch: break;
  }
  return {"nn.MultiheadAttention", "", "", "", "out_proj."};
}

}  // namespace

std::string_view names_str(Names names) {
  switch (names) {
    case Names::torch: return "torch";
    case Names::d2l: return "d2l";
    case Names::transformer_tutorial: return "transformer_tutorial";
    case Names::self_attention: return "self_attention";
  }
  return "unknown";
}

NamedTensors state_dict(const MultiHeadAttention& module, Names names) {
  if (names == Names::torch) return module.named_parameters();
  const Convention c = convention_of(names);
  const auto fail = [&](const std::string& problem) {
    detail::fail(kOp, fmt::format("MultiHeadAttention, {} names: {}", names_str(names), problem));
  };
  if (module.bias_k.defined())
    fail(fmt::format("the module has bias_k and bias_v (add_bias_kv), which {} does not have; "
                     "use Names::torch",
                     c.module));
  const bool has_out = module.out_proj_weight.defined();
  if (has_out && c.out.empty())
    fail(fmt::format("the module has an output projection, which {} does not have; construct "
                     "it with out_proj = false, or use Names::torch",
                     c.module));
  if (!has_out && !c.out.empty())
    fail(fmt::format("the module has no output projection (out_proj = false), but {} has one "
                     "({}weight)",
                     c.module, c.out));

  const MultiHeadAttentionOptions& o = module.options();
  const std::int64_t qk = o.qk_proj_dim.value_or(o.embed_dim);
  const std::int64_t v = o.v_proj_dim.value_or(o.embed_dim);
  // Row ranges of q, k and v in the packed in_proj_weight and in in_proj_bias.
  const std::int64_t from[] = {0, qk, 2 * qk}, to[] = {qk, 2 * qk, 2 * qk + v};
  const Tensor* separate[] = {&module.q_proj_weight, &module.k_proj_weight, &module.v_proj_weight};
  const std::string_view prefix[] = {c.q, c.k, c.v};

  NamedTensors params;
  for (int i = 0; i < 3; ++i) {
    const std::string p(prefix[i]);
    params.emplace_back(p + "weight", module.packed_in_proj()
                                          ? module.in_proj_weight.slice(0, from[i], to[i])
                                          : *separate[i]);
    if (module.in_proj_bias.defined())
      params.emplace_back(p + "bias", module.in_proj_bias.slice(0, from[i], to[i]));
  }
  if (has_out) {
    params.emplace_back(std::string(c.out) + "weight", module.out_proj_weight);
    if (module.out_proj_bias.defined())
      params.emplace_back(std::string(c.out) + "bias", module.out_proj_bias);
  }
  return params;
}

NamedTensors state_dict(const AdditiveAttention& module) { return module.named_parameters(); }

NamedTensors state_dict(const Linear& module) { return module.named_parameters(); }

}  // namespace attn::io
