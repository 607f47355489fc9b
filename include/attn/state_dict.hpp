// attn::io state dicts: a module's parameters under the names PyTorch code gives them,
// to load weights trained in PyTorch and to save weights for it.
//
//   attn::MultiHeadAttention mha({.embed_dim = 512, .num_heads = 8});
//   attn::io::load_state_dict(mha, attn::io::load_safetensors("mha.safetensors").tensors);
//   attn::io::save_safetensors("back.safetensors", attn::io::state_dict(mha));
//
// nn.MultiheadAttention's names are MultiHeadAttention's own (named_parameters()).
// The tutorials' modules name the same parameters differently, and split what
// nn.MultiheadAttention packs; `Names` picks the convention, and the state dict holds
// views of the module's storage under those names:
//
//   Names::torch                 in_proj_weight (or q_proj_weight, k_proj_weight,
//                                v_proj_weight), in_proj_bias, bias_k, bias_v,
//                                out_proj.weight, out_proj.bias
//   Names::d2l                   d2l's MultiHeadAttention: W_q, W_k, W_v, W_o, each
//                                .weight (and .bias with bias=True)
//   Names::transformer_tutorial  the Transformer tutorial's MultiHeadAttention(d_model,
//                                num_heads): wq, wk, wv, dense, each .weight and .bias
//   Names::self_attention        Self_Attention(input_dim, dim_k, dim_v): q, k, v, each
//                                .weight and .bias; no output projection
//
// A convention that has no name for a parameter of the module (bias_k in d2l's names,
// the output projection in Self_Attention's) is an error, never a silent omission.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "attn/modules.hpp"
#include "attn/safetensors.hpp"

namespace attn::io {

enum class Names { torch, d2l, transformer_tutorial, self_attention };

// "torch", "d2l", "transformer_tutorial", "self_attention".
std::string_view names_str(Names names);

struct LoadOptions {
  Names names = Names::torch;  // MultiHeadAttention's convention; the other modules
                               // have one set of names each (see state_dict)
  bool strict = true;          // missing and unexpected keys are errors, as in torch
};

// What load_state_dict left out, as torch's load_state_dict(strict=False) returns it.
struct LoadResult {
  std::vector<std::string> missing_keys;     // the module's names absent from the tensors
  std::vector<std::string> unexpected_keys;  // the tensors' names the module has not
};

// The parameters of `module` under the names of `names`, in the order the PyTorch
// module's state_dict() lists them, as views of the module's storage: writing into
// one writes the module's parameter. Throws attn::Error when the convention has no
// name for one of the module's parameters.
NamedTensors state_dict(const MultiHeadAttention& module, Names names = Names::torch);
// d2l's AdditiveAttention: W_q.weight, W_k.weight, w_v.weight.
NamedTensors state_dict(const AdditiveAttention& module);
// nn.Linear: weight, and bias when it has one.
NamedTensors state_dict(const Linear& module);

// Copies `tensors` into the parameters of `module`, matched by name, as torch's
// load_state_dict. Throws attn::Error listing every problem at once, and then changes
// nothing: a size mismatch (always), missing and unexpected keys (when strict), a
// name given twice, or names the convention has no place for. Without `strict`,
// returns the keys it left out, and the missing parameters keep their values.
LoadResult load_state_dict(MultiHeadAttention& module, const NamedTensors& tensors,
                           const LoadOptions& options = {});
LoadResult load_state_dict(AdditiveAttention& module, const NamedTensors& tensors,
                           const LoadOptions& options = {});
LoadResult load_state_dict(Linear& module, const NamedTensors& tensors,
                           const LoadOptions& options = {});

}  // namespace attn::io
