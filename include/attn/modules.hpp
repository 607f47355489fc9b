// Modules: they own parameters, in PyTorch's names and layouts, and call the ops.
//
// Parameters are tensors whose storage the module shares with whoever holds a
// handle, so `named_parameters()` is also the way to load weights into a module:
// `copy_from` into the handle it returns.
//
// Gradients: every forward keeps what its backward needs (handles to its inputs
// and to the activations it computed anyway: projections, the heads' output, the
// log-sum-exp; never an L x L matrix), as d2l's modules keep attention_weights.
// `backward(grad_output)` then differentiates that last forward and returns fresh
// gradients of its inputs and parameters; nothing accumulates, so there is no
// zero_grad. Call backward before changing the parameters or the inputs in place.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "attn/backward.hpp"
#include "attn/mask.hpp"
#include "attn/ops.hpp"
#include "attn/rng.hpp"
#include "attn/tensor.hpp"

namespace attn {

using NamedParameters = std::vector<std::pair<std::string, Tensor>>;

// The entry of `params` called `name`; attn::Error naming it and the names there are
// when it is absent.
const Tensor& find_parameter(const NamedParameters& params, std::string_view name);

// The parameters' part of a module's backward: one gradient per parameter, with
// the names and in the order of named_parameters(), so that an optimizer can walk
// both lists together.
struct ParameterGrads {
  NamedParameters params;
  const Tensor& param(std::string_view name) const { return find_parameter(params, name); }
};

// Linear::backward: dL/dx of the last forward's input, in its shape.
struct LinearModuleGrads : ParameterGrads {
  Tensor input;
};

// The attention modules' backward: dL/dquery, dL/dkey, dL/dvalue in the shapes of
// the last forward's inputs. For self-attention (one tensor passed three times)
// the input's gradient is their sum.
struct AttentionModuleGrads : ParameterGrads {
  Tensor query, key, value;
};

// Training mode turns dropout on; every module starts in training mode, as in torch.
class Module {
 public:
  void train(bool on = true) { training_ = on; }
  void eval() { training_ = false; }
  bool training() const { return training_; }

 protected:
  bool training_ = true;
};

// nn.Linear: y = x W^T + b. weight (out, in); bias (out) or undefined.
// Initialised as torch: U(-1/sqrt(in), 1/sqrt(in)) for both.
class Linear {
 public:
  Linear(std::int64_t in_features, std::int64_t out_features, bool bias, Rng& rng);
  // const: it leaves the parameters alone. It records a handle to x for backward,
  // so one Linear is not for concurrent forwards.
  Tensor forward(const Tensor& x) const;
  // Gradients of the last forward, given dL/dy of y's shape.
  LinearModuleGrads backward(const Tensor& grad_output) const;
  NamedParameters named_parameters(const std::string& prefix = "") const;

  Tensor weight;  // (out, in)
  Tensor bias;    // (out), undefined without bias

 private:
  mutable Tensor saved_x_;  // the last forward's input
};

// d2l's AdditiveAttention(key_size, query_size, num_hiddens, dropout):
// parameters W_q.weight (H, Dq), W_k.weight (H, Dk), w_v.weight (1, H).
class AdditiveAttention : public Module {
 public:
  AdditiveAttention(std::int64_t key_size, std::int64_t query_size, std::int64_t num_hiddens,
                    double dropout, Rng& rng);
  // queries (B, Lq, Dq), keys (B, Lk, Dk), values (B, Lk, Dv); valid_lens (B) or (B, Lq).
  Tensor forward(const Tensor& queries, const Tensor& keys, const Tensor& values,
                 const std::optional<IndexTensor>& valid_lens = std::nullopt);
  // Gradients of the last forward (the same dropout mask), given dL/dout (B, Lq, Dv);
  // params: W_q.weight, W_k.weight, w_v.weight.
  AttentionModuleGrads backward(const Tensor& grad_output) const;
  NamedParameters named_parameters() const;

  Linear W_q, W_k, w_v;
  double dropout;
  MaskFill fill = MaskFill::d2l;  // the documents' convention; neg_inf for zeros
  Tensor attention_weights;       // (B, Lq, Lk) of the last forward, before dropout (as d2l)

 private:
  struct Saved {
    Tensor queries, keys, values, out, lse;
    AdditiveOptions options;  // mask, dropout seed and fill as the forward ran
  };
  Rng dropout_rng_;
  std::optional<Saved> saved_;
};

// d2l's DotProductAttention(dropout): softmax(q k^T / sqrt(d)) v with valid_lens.
// `scaled = false` gives the unscaled form of document 001.
class DotProductAttention : public Module {
 public:
  explicit DotProductAttention(double dropout, bool scaled = true, std::uint64_t seed = 0);
  // queries (B, Lq, D), keys (B, Lk, D), values (B, Lk, Dv); valid_lens (B) or (B, Lq).
  Tensor forward(const Tensor& queries, const Tensor& keys, const Tensor& values,
                 const std::optional<IndexTensor>& valid_lens = std::nullopt);
  // Gradients of the last forward (the same dropout mask), given dL/dout (B, Lq, Dv);
  // no parameters.
  AttentionModuleGrads backward(const Tensor& grad_output) const;

  double dropout;
  bool scaled;
  MaskFill fill = MaskFill::d2l;
  Tensor attention_weights;  // (B, Lq, Lk) of the last forward, before dropout (as d2l)

 private:
  struct Saved {
    Tensor queries, keys, values, out, lse;
    SdpaOptions options;  // mask, scale, dropout seed and fill as the forward ran
  };
  Rng dropout_rng_;
  std::optional<Saved> saved_;
};

// nn.MultiheadAttention's constructor arguments, plus the widths the documents'
// variants need (d2l's query_size, Self_Attention's dim_k and dim_v, no output map).
struct MultiHeadAttentionOptions {
  std::int64_t embed_dim = 0;  // E
  std::int64_t num_heads = 1;
  double dropout = 0.0;
  bool bias = true;
  bool add_bias_kv = false;
  bool add_zero_attn = false;
  std::optional<std::int64_t> kdim{};  // key input width, default E
  std::optional<std::int64_t> vdim{};  // value input width, default E
  bool batch_first = false;
  // Beyond torch:
  std::optional<std::int64_t> qdim{};         // query input width, default E (d2l's query_size)
  std::optional<std::int64_t> qk_proj_dim{};  // projected query/key width, default E (dim_k)
  std::optional<std::int64_t> v_proj_dim{};   // projected value width, default E (dim_v)
  bool out_proj = true;                       // false: no output projection (Self_Attention)
  std::uint64_t seed = 0;                     // parameter initialisation and dropout
};

// A mask argument as torch takes it: absent, boolean (true = blocked, as in
// nn.MultiheadAttention) or float (added to the scores).
using MaskTensor = std::variant<std::monostate, BoolTensor, Tensor>;

struct MultiHeadForwardOptions {
  MaskTensor key_padding_mask{};  // (B, S), or (S) for unbatched input
  MaskTensor attn_mask{};         // (L, S) or (B * num_heads, L, S)
  bool need_weights = true;
  bool average_attn_weights = true;
  bool is_causal = false;                   // adds a top-left causal mask
  std::optional<IndexTensor> valid_lens{};  // d2l: (B) or (B, L) keys kept; unbatched: () or (L)
  Mask mask{};                              // any further mask over (B, H, L, S)
  MaskFill fill = MaskFill::neg_inf;
  Kernel kernel = Kernel::automatic;
};

struct MultiHeadResult {
  Tensor output;   // (L, B, E), or (B, L, E) with batch_first, or (L, E) unbatched
  Tensor weights;  // (B, L, S) averaged over heads, or (B, H, L, S); undefined
                   // without need_weights
};

// nn.MultiheadAttention. Parameter names and layouts are PyTorch's:
//   in_proj_weight (3E, E) = [W_q; W_k; W_v] when all widths are E, otherwise
//   q_proj_weight (Pqk, Dq), k_proj_weight (Pqk, Dk), v_proj_weight (Pv, Dv);
//   in_proj_bias (2 Pqk + Pv); bias_k (1, 1, Pqk), bias_v (1, 1, Pv);
//   out_proj.weight (E, Pv), out_proj.bias (E).
class MultiHeadAttention : public Module {
 public:
  explicit MultiHeadAttention(const MultiHeadAttentionOptions& options);
  MultiHeadResult forward(const Tensor& query, const Tensor& key, const Tensor& value,
                          const MultiHeadForwardOptions& options = {});
  // Gradients of the last forward, given dL/doutput of the output's shape: the
  // inputs' and every parameter's (named_parameters()'s names and order), through
  // the same masks and dropout mask. The weights output is not differentiated.
  // The projections' products run on the forward's kernel choice (OpenBLAS for
  // Kernel::automatic, double loops for Kernel::reference); attention runs on the
  // reference backward.
  AttentionModuleGrads backward(const Tensor& grad_output) const;
  NamedParameters named_parameters() const;
  const MultiHeadAttentionOptions& options() const { return options_; }
  // True when q, k and v share one in_proj_weight (torch's _qkv_same_embed_dim).
  bool packed_in_proj() const { return packed_; }

  Tensor in_proj_weight, q_proj_weight, k_proj_weight, v_proj_weight;
  Tensor in_proj_bias;
  Tensor bias_k, bias_v;
  Tensor out_proj_weight, out_proj_bias;

 private:
  // What backward reads of the last forward.
  struct Saved {
    Tensor query, key, value;  // the inputs, as passed
    Tensor q, k, v;            // (B, L, Pqk), (B, S', Pqk), (B, S', Pv) batch-major: the
                               // projections, keys and values with the appended rows
    Tensor concat;             // (B, L, Pv), or (L, B, Pv) sequence-first: heads' output
    Tensor lse;                // (B, H, L)
    SdpaOptions attention;     // the mask, dropout seed and fill the heads ran with
    Kernel kernel = Kernel::automatic;
    bool batched = true;
    std::int64_t S = 0;        // real keys, before the appended ones
    Shape output_shape;
  };
  MultiHeadAttentionOptions options_;
  bool packed_ = false;
  Rng dropout_rng_;
  std::optional<Saved> saved_;
};

}  // namespace attn
