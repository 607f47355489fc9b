// The modules, with torch's and d2l's names: Linear (nn.Linear), MultiheadAttention
// (nn.MultiheadAttention), AdditiveAttention and DotProductAttention (d2l).
//
// Each Python object owns one C++ module. A forward runs without the GIL and
// under the object's own mutex: it advances the module's dropout stream and
// (d2l) stores attention_weights, so two threads must not run it at once.
#include <pybind11/stl.h>

#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "attn/modules.hpp"
#include "bindings.hpp"
#include "convert.hpp"
#include "state_dict.hpp"

namespace attn::python {

namespace {

using namespace pybind11::literals;

// An attn::Linear over existing weight and bias handles (shared, not copied):
// MultiheadAttention's out_proj, seen as torch shows it.
Linear linear_over(const Tensor& weight, const Tensor& bias) {
  Rng unused(0);
  Linear linear(0, 0, false, unused);  // empty parameters, replaced next
  linear.weight = weight;
  linear.bias = bias;
  return linear;
}

py::list named_parameter_list(const NamedParameters& params) {
  py::list out;
  for (const auto& [name, tensor] : params) out.append(py::make_tuple(name, to_numpy(tensor)));
  return out;
}

py::list parameter_list(const NamedParameters& params) {
  py::list out;
  for (const auto& entry : params) out.append(to_numpy(entry.second));
  return out;
}

struct MultiheadAttentionObject {
  explicit MultiheadAttentionObject(const MultiHeadAttentionOptions& options) : module(options) {}
  MultiHeadAttention module;
  std::mutex forward;
};

struct AdditiveAttentionObject {
  AdditiveAttentionObject(std::int64_t key_size, std::int64_t query_size, std::int64_t num_hiddens,
                          double dropout)
      : module([&] {
          Rng rng(next_seed());
          return AdditiveAttention(key_size, query_size, num_hiddens, dropout, rng);
        }()) {}
  AdditiveAttention module;
  std::mutex forward;
};

struct DotProductAttentionObject {
  explicit DotProductAttentionObject(double dropout) : module(dropout, /*scaled=*/true, next_seed()) {}
  DotProductAttention module;
  std::mutex forward;
};

// What d2l's two attention modules share beside forward: mha(...) calling
// forward, the last forward's attention_weights and the dropout probability.
template <class Object>
void def_d2l_attention(py::class_<Object>& cls) {
  cls.def(
         "__call__",
         [](py::object self, py::handle q, py::handle k, py::handle v, py::handle lens) {
           return self.attr("forward")(q, k, v, lens);
         },
         "queries"_a, "keys"_a, "values"_a, "valid_lens"_a = py::none(),
         R"(__call__(self, queries, keys, values, valid_lens=None)
--

forward(queries, keys, values, valid_lens).)")
      .def_property_readonly(
          "attention_weights", [](const Object& o) { return to_numpy(o.module.attention_weights); },
          "(B, Lq, Lk) of the last forward, before dropout; None before the first.")
      .def_property_readonly(
          "dropout", [](const Object& o) { return o.module.dropout; }, "The dropout probability.");
}

// train(mode=True), eval() and the training attribute, as torch.nn.Module's.
template <class Object>
void def_mode(py::class_<Object>& cls) {
  cls.def(
         "train",
         [](py::object self, bool mode) {
           self.cast<Object&>().module.train(mode);
           return self;
         },
         "mode"_a = true, R"(train(self, mode=True)
--

Training mode (dropout on) or, with mode=False, evaluation mode; returns self.)")
      .def(
          "eval",
          [](py::object self) {
            self.cast<Object&>().module.eval();
            return self;
          },
          R"(eval(self)
--

Evaluation mode (dropout off); returns self.)")
      .def_property(
          "training", [](const Object& o) { return o.module.training(); },
          [](Object& o, bool on) { o.module.train(on); },
          "True in training mode (the default, as in torch).");
}

// A parameter attribute: reading gives a view of the parameter (None when this
// configuration has none), assigning copies the values in.
template <class Object>
void def_parameter(py::class_<Object>& cls, const char* name, Tensor MultiHeadAttention::*member) {
  cls.def_property(
      name, [member](const Object& o) { return to_numpy(o.module.*member); },
      [member, name](Object& o, py::handle value) {
        assign_parameter(o.module.*member, value, "MultiheadAttention", name);
      });
}

// state_dict, load_state_dict, named_parameters and parameters over named_parameters().
template <class Object, class Params>
void def_parameter_access(py::class_<Object>& cls, const char* module_name, Params named) {
  cls.def(
         "named_parameters", [named](const Object& o) { return named_parameter_list(named(o)); },
         R"(named_parameters(self)
--

[(name, array)] with torch's names; each array is a view of the parameter.)")
      .def(
          "parameters", [named](const Object& o) { return parameter_list(named(o)); },
          R"(parameters(self)
--

The parameters' arrays (views), in named_parameters' order.)")
      .def(
          "state_dict", [named](const Object& o) { return state_dict(named(o)); },
          R"(state_dict(self)
--

{name: array}: torch's names, each array a view of the parameter.)")
      .def(
          "load_state_dict",
          [named, module_name](const Object& o, py::handle state, bool strict) {
            return load_state_dict(named(o), state, strict, module_name);
          },
          "state_dict"_a, "strict"_a = true,
          R"(load_state_dict(self, state_dict, strict=True)
--

Copies {name: array} into the parameters of those names (any real dtype,
converted to float32); nothing when it raises. strict: missing or unexpected
keys are errors, as in torch; a shape mismatch always is. Raises attn.Error
with torch's text; returns (missing_keys, unexpected_keys).)");
}

py::tuple mha_forward(MultiheadAttentionObject& self, py::handle query, py::handle key, py::handle value,
                      py::handle key_padding_mask, bool need_weights, py::handle attn_mask,
                      bool average_attn_weights, bool is_causal) {
  constexpr std::string_view kOp = "MultiheadAttention.forward";
  const Tensor q = float_array(query, kOp, "query");
  const Tensor k = float_array(key, kOp, "key");
  const Tensor v = float_array(value, kOp, "value");
  MultiHeadForwardOptions options;
  options.key_padding_mask = mask_array(key_padding_mask, kOp, "key_padding_mask");
  options.attn_mask = mask_array(attn_mask, kOp, "attn_mask");
  options.need_weights = need_weights;
  options.average_attn_weights = average_attn_weights;
  options.is_causal = is_causal;
  MultiHeadResult r;
  {
    py::gil_scoped_release release;
    const std::lock_guard lock(self.forward);
    r = self.module.forward(q, k, v, options);
  }
  return py::make_tuple(to_numpy(r.output), to_numpy(r.weights));
}

// The gradients of the last forward, given dL/doutput: what torch's autograd
// leaves in .grad after output.backward(grad_output), returned instead.
py::tuple mha_backward(MultiheadAttentionObject& self, py::handle grad_output) {
  const Tensor dy = float_array(grad_output, "MultiheadAttention.backward", "grad_output");
  AttentionModuleGrads g;
  {
    py::gil_scoped_release release;
    const std::lock_guard lock(self.forward);
    g = self.module.backward(dy);
  }
  py::dict params;
  for (const auto& [name, t] : g.params) params[py::str(name)] = to_numpy(t);
  return py::make_tuple(to_numpy(g.query), to_numpy(g.key), to_numpy(g.value), params);
}

// The d2l modules' forward: (queries, keys, values, valid_lens) -> output.
template <class Object>
py::object d2l_forward(Object& self, std::string_view op, py::handle queries, py::handle keys,
                       py::handle values, py::handle valid_lens) {
  const Tensor q = float_array(queries, op, "queries");
  const Tensor k = float_array(keys, op, "keys");
  const Tensor v = float_array(values, op, "values");
  std::optional<IndexTensor> lens;
  if (!valid_lens.is_none()) lens = index_array(valid_lens, op, "valid_lens");
  Tensor out;
  {
    py::gil_scoped_release release;
    const std::lock_guard lock(self.forward);
    out = self.module.forward(q, k, v, lens);
  }
  return to_numpy(out);
}

std::string bool_str(bool b) { return b ? "True" : "False"; }

void register_linear(py::module_& m) {
  py::class_<Linear> cls(m, "Linear", R"(nn.Linear: y = x @ weight^T + bias.

weight (out_features, in_features), bias (out_features) or None; initialised as
torch's, U(-1/sqrt(in_features), 1/sqrt(in_features)), from attn.manual_seed's stream.)");
  cls.def(py::init([](std::int64_t in_features, std::int64_t out_features, bool bias) {
            Rng rng(next_seed());
            return Linear(in_features, out_features, bias, rng);
          }),
          "in_features"_a, "out_features"_a, "bias"_a = true,
          R"(__init__(self, in_features, out_features, bias=True)
--

)")
      .def(
          "forward",
          [](const Linear& l, py::handle input) {
            const Tensor x = float_array(input, "Linear.forward", "input");
            Tensor y;
            {
              py::gil_scoped_release release;
              y = l.forward(x);
            }
            return to_numpy(y);
          },
          "input"_a, R"(forward(self, input)
--

input (..., in_features) float32 -> (..., out_features).)")
      .def(
          "__call__", [](py::object self, py::handle input) { return self.attr("forward")(input); },
          "input"_a,
          R"(__call__(self, input)
--

forward(input).)")
      .def_property_readonly("in_features", [](const Linear& l) { return l.weight.size(1); })
      .def_property_readonly("out_features", [](const Linear& l) { return l.weight.size(0); })
      .def_property(
          "weight", [](const Linear& l) { return to_numpy(l.weight); },
          [](Linear& l, py::handle value) { assign_parameter(l.weight, value, "Linear", "weight"); },
          "(out_features, in_features), a view of the parameter; assigning copies the values in.")
      .def_property(
          "bias", [](const Linear& l) { return to_numpy(l.bias); },
          [](Linear& l, py::handle value) { assign_parameter(l.bias, value, "Linear", "bias"); },
          "(out_features) or None, a view of the parameter; assigning copies the values in.")
      .def("__repr__", [](const Linear& l) {
        return "Linear(in_features=" + std::to_string(l.weight.size(1)) +
               ", out_features=" + std::to_string(l.weight.size(0)) + ", bias=" + bool_str(l.bias.defined()) +
               ")";
      });
  def_parameter_access(cls, "Linear", [](const Linear& l) { return l.named_parameters(); });
}

void register_multihead_attention(py::module_& m) {
  using Object = MultiheadAttentionObject;
  py::class_<Object> cls(m, "MultiheadAttention", R"(nn.MultiheadAttention over numpy float32 arrays.

Parameters have torch's names and layouts: in_proj_weight (3E, E) when kdim and
vdim are E, else q_proj_weight (E, E), k_proj_weight (E, kdim), v_proj_weight
(E, vdim); in_proj_bias (3E); bias_k, bias_v (1, 1, E) with add_bias_kv;
out_proj.weight (E, E), out_proj.bias (E). Absent ones are None. Reading one
gives a view of the parameter; assigning one copies the values in. Initialised
as torch's (xavier_uniform, zero biases), from attn.manual_seed's stream. The
module starts in training mode, as torch's: call eval() to turn dropout off.)");
  cls.def(
      py::init([](std::int64_t embed_dim, std::int64_t num_heads, double dropout, bool bias, bool add_bias_kv,
                  bool add_zero_attn, std::optional<std::int64_t> kdim, std::optional<std::int64_t> vdim,
                  bool batch_first) {
        MultiHeadAttentionOptions o;
        o.embed_dim = embed_dim;
        o.num_heads = num_heads;
        o.dropout = dropout;
        o.bias = bias;
        o.add_bias_kv = add_bias_kv;
        o.add_zero_attn = add_zero_attn;
        o.kdim = kdim;
        o.vdim = vdim;
        o.batch_first = batch_first;
        o.seed = next_seed();
        return std::make_unique<Object>(o);
      }),
      "embed_dim"_a, "num_heads"_a, "dropout"_a = 0.0, "bias"_a = true, "add_bias_kv"_a = false,
      "add_zero_attn"_a = false, "kdim"_a = py::none(), "vdim"_a = py::none(), "batch_first"_a = false,
      R"(__init__(self, embed_dim, num_heads, dropout=0.0, bias=True, add_bias_kv=False, add_zero_attn=False, kdim=None, vdim=None, batch_first=False)
--

)");

  const std::string forward_doc = R"(Attention of query over key and value, as torch's forward.

query (L, N, E), key (S, N, kdim), value (S, N, vdim), float32; (N, L, E) and
so on with batch_first; (L, E), (S, kdim), (S, vdim) unbatched.
key_padding_mask (N, S) or (S): bool, True = ignore that key; or float32, added.
attn_mask (L, S) or (N * num_heads, L, S): bool, True = not allowed; or float32,
added. is_causal adds the causal mask (key j <= query i) to whatever attn_mask
says (torch takes it as a hint that attn_mask is that mask, and needs one).
Returns (output, weights): output like query with E features; weights (N, L, S)
averaged over heads, or (N, num_heads, L, S) with average_attn_weights=False
((L, S) or (num_heads, L, S) unbatched), the weights applied (after dropout);
None with need_weights=False. S counts the keys that add_bias_kv and
add_zero_attn append. A query with no key left gets zero weights, never NaN.)";
  const auto forward_args = std::make_tuple("query"_a, "key"_a, "value"_a, "key_padding_mask"_a = py::none(),
                                            "need_weights"_a = true, "attn_mask"_a = py::none(),
                                            "average_attn_weights"_a = true, "is_causal"_a = false);
  for (const char* name : {"forward", "__call__"}) {
    // Signature lines for inspect.signature, which then reads as torch's.
    const std::string doc =
        std::string(name) +
        "(self, query, key, value, key_padding_mask=None, need_weights=True, attn_mask=None, "
        "average_attn_weights=True, is_causal=False)\n--\n\n" +
        forward_doc;
    std::apply([&](auto... args) { cls.def(name, &mha_forward, args..., doc.c_str()); }, forward_args);
  }

  cls.def("backward", &mha_backward, "grad_output"_a, R"(backward(self, grad_output)
--

The gradients of the last forward, given dL/doutput (output's shape):
(grad_query, grad_key, grad_value, {name: grad}) with named_parameters()'s names,
what torch's output.backward(grad_output) leaves in the inputs' and parameters'
.grad. Fresh arrays on every call: nothing accumulates. For self-attention (one
array passed three times) its gradient is the sum of the three. Raises attn.Error
before any forward, or when grad_output's shape is not the output's.)");
  def_mode(cls);
  def_parameter(cls, "in_proj_weight", &MultiHeadAttention::in_proj_weight);
  def_parameter(cls, "q_proj_weight", &MultiHeadAttention::q_proj_weight);
  def_parameter(cls, "k_proj_weight", &MultiHeadAttention::k_proj_weight);
  def_parameter(cls, "v_proj_weight", &MultiHeadAttention::v_proj_weight);
  def_parameter(cls, "in_proj_bias", &MultiHeadAttention::in_proj_bias);
  def_parameter(cls, "bias_k", &MultiHeadAttention::bias_k);
  def_parameter(cls, "bias_v", &MultiHeadAttention::bias_v);
  cls.def_property_readonly(
      "out_proj",
      [](const Object& o) { return linear_over(o.module.out_proj_weight, o.module.out_proj_bias); },
      "The output projection as a Linear whose weight (E, E) and bias (E) are this module's.");
  def_parameter_access(cls, "MultiheadAttention",
                       [](const Object& o) { return o.module.named_parameters(); });

  const auto& opt = [](const Object& o) -> const MultiHeadAttentionOptions& { return o.module.options(); };
  cls.def_property_readonly("embed_dim", [opt](const Object& o) { return opt(o).embed_dim; })
      .def_property_readonly("kdim",
                             [opt](const Object& o) { return opt(o).kdim.value_or(opt(o).embed_dim); })
      .def_property_readonly("vdim",
                             [opt](const Object& o) { return opt(o).vdim.value_or(opt(o).embed_dim); })
      .def_property_readonly("num_heads", [opt](const Object& o) { return opt(o).num_heads; })
      .def_property_readonly("head_dim",
                             [opt](const Object& o) { return opt(o).embed_dim / opt(o).num_heads; })
      .def_property_readonly("dropout", [opt](const Object& o) { return opt(o).dropout; })
      .def_property_readonly("batch_first", [opt](const Object& o) { return opt(o).batch_first; })
      .def_property_readonly("add_zero_attn", [opt](const Object& o) { return opt(o).add_zero_attn; })
      .def_property_readonly("_qkv_same_embed_dim", [](const Object& o) { return o.module.packed_in_proj(); })
      .def("__repr__", [opt](const Object& o) {
        const MultiHeadAttentionOptions& x = opt(o);
        return "MultiheadAttention(embed_dim=" + std::to_string(x.embed_dim) +
               ", num_heads=" + std::to_string(x.num_heads) +
               ", dropout=" + py::repr(py::float_(x.dropout)).cast<std::string>() +
               ", bias=" + bool_str(x.bias) + ", add_bias_kv=" + bool_str(x.add_bias_kv) +
               ", add_zero_attn=" + bool_str(x.add_zero_attn) +
               ", kdim=" + std::to_string(x.kdim.value_or(x.embed_dim)) +
               ", vdim=" + std::to_string(x.vdim.value_or(x.embed_dim)) +
               ", batch_first=" + bool_str(x.batch_first) + ")";
      });
}

void register_additive_attention(py::module_& m) {
  using Object = AdditiveAttentionObject;
  py::class_<Object> cls(m, "AdditiveAttention", R"(d2l's AdditiveAttention (Bahdanau):
score(q, k) = w_v^T tanh(W_q q + W_k k), masked_softmax over the keys, dropout,
weighted sum of the values.

W_q (Linear query_size -> num_hiddens), W_k (key_size -> num_hiddens), w_v
(num_hiddens -> 1), no biases. attention_weights: the last forward's softmax
(before dropout), as d2l keeps it. Starts in training mode.)");
  cls.def(py::init<std::int64_t, std::int64_t, std::int64_t, double>(), "key_size"_a, "query_size"_a,
          "num_hiddens"_a, "dropout"_a = 0.0,
          R"(__init__(self, key_size, query_size, num_hiddens, dropout=0.0)
--

)")
      .def(
          "forward",
          [](Object& self, py::handle queries, py::handle keys, py::handle values, py::handle valid_lens) {
            return d2l_forward(self, "AdditiveAttention.forward", queries, keys, values, valid_lens);
          },
          "queries"_a, "keys"_a, "values"_a, "valid_lens"_a = py::none(),
          R"(forward(self, queries, keys, values, valid_lens=None)
--

queries (B, Lq, query_size), keys (B, Lk, key_size), values (B, Lk, Dv), float32;
valid_lens None, (B) or (B, Lq) integers -> (B, Lq, Dv).)")
      .def_property_readonly(
          "W_q", [](Object& o) -> Linear& { return o.module.W_q; },
          py::return_value_policy::reference_internal)
      .def_property_readonly(
          "W_k", [](Object& o) -> Linear& { return o.module.W_k; },
          py::return_value_policy::reference_internal)
      .def_property_readonly(
          "w_v", [](Object& o) -> Linear& { return o.module.w_v; },
          py::return_value_policy::reference_internal);
  def_d2l_attention(cls);
  def_mode(cls);
  def_parameter_access(cls, "AdditiveAttention", [](const Object& o) { return o.module.named_parameters(); });
}

void register_dot_product_attention(py::module_& m) {
  using Object = DotProductAttentionObject;
  py::class_<Object> cls(m, "DotProductAttention", R"(d2l's DotProductAttention:
softmax(queries @ keys^T / sqrt(d)) with valid_lens (masked_softmax), dropout,
then @ values. attention_weights: the last forward's softmax (before dropout).
Starts in training mode.)");
  cls.def(py::init<double>(), "dropout"_a = 0.0, R"(__init__(self, dropout=0.0)
--

)")
      .def(
          "forward",
          [](Object& self, py::handle queries, py::handle keys, py::handle values, py::handle valid_lens) {
            return d2l_forward(self, "DotProductAttention.forward", queries, keys, values, valid_lens);
          },
          "queries"_a, "keys"_a, "values"_a, "valid_lens"_a = py::none(),
          R"(forward(self, queries, keys, values, valid_lens=None)
--

queries (B, Lq, d), keys (B, Lk, d), values (B, Lk, Dv), float32; valid_lens
None, (B) or (B, Lq) integers -> (B, Lq, Dv).)");
  def_d2l_attention(cls);
  def_mode(cls);
}

}  // namespace

void register_modules(py::module_& m) {
  // Each docstring starts with its signature in torch's spelling, which
  // inspect.signature and help() read, instead of pybind11's typed one.
  py::options options;
  options.disable_function_signatures();
  register_linear(m);
  register_multihead_attention(m);
  register_additive_attention(m);
  register_dot_product_attention(m);
}

}  // namespace attn::python
