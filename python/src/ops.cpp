// The ops, with torch's signatures: scaled_dot_product_attention as
// torch.nn.functional's, masked_softmax as d2l's.
#include <pybind11/stl.h>

#include <optional>
#include <string>
#include <variant>

#include "attn/ops.hpp"
#include "bindings.hpp"
#include "convert.hpp"

namespace attn::python {

namespace {

using namespace pybind11::literals;

constexpr std::string_view kSdpa = "scaled_dot_product_attention";

Shape drop_last(const Shape& shape, std::size_t n) { return Shape(shape.begin(), shape.end() - n); }

// (..., L, D) as (B, H, L, D): the dims before the last two are the batch, the
// last of them the heads (torch's layout for enable_gqa). Rank 2 is one batch of
// one head, rank 3 one batch of heads; more than 4 dims fold the leading ones
// into B, as a view when the strides allow it (always for contiguous input; a
// mask broadcast along only some of them is materialised).
template <class T>
BasicTensor<T> as_bhld(const BasicTensor<T>& t) {
  if (t.rank() == 2) return t.unsqueeze(0).unsqueeze(0);
  if (t.rank() == 3) return t.unsqueeze(0);
  if (t.rank() == 4) return t;
  const Shape shape = {shape_numel(drop_last(t.shape(), 3)), t.size(-3), t.size(-2), t.size(-1)};
  if (detail::reshape_strides(t.shape(), t.strides(), shape)) return t.reshape(shape);
  return t.contiguous().reshape(shape);
}

// Torch's rules for query (..., Hq, L, E), key (..., H, S, E), value (..., H, S, Ev):
// the same batch dims, and the same heads unless enable_gqa lets Hq be a multiple of H.
void check_qkv(const Tensor& q, const Tensor& k, const Tensor& v, bool enable_gqa) {
  const std::string shapes =
      "query " + q.shape_string() + ", key " + k.shape_string() + ", value " + v.shape_string();
  if (q.rank() < 2 || k.rank() != q.rank() || v.rank() != q.rank())
    value_error(kSdpa,
                "query, key and value must have the same number of dims, at least 2: "
                "(..., L, E), (..., S, E), (..., S, Ev); got " +
                    shapes);
  if (k.size(-1) != q.size(-1))
    value_error(kSdpa, "key must have query's embedding size E = " + std::to_string(q.size(-1)) +
                           " in its last dim; got " + shapes);
  if (v.size(-2) != k.size(-2))
    value_error(kSdpa, "value must have key's length S = " + std::to_string(k.size(-2)) + " in dim -2; got " +
                           shapes);
  // Dim -3 is the heads of 4-D inputs, and of 3-D ones under enable_gqa; the dims
  // before it are batch dims, which must match.
  const bool has_heads = q.rank() >= 4 || (q.rank() == 3 && enable_gqa);
  const Shape batch = drop_last(q.shape(), has_heads ? 3 : 2);
  for (const auto& [name, t] : {std::pair{"key", &k}, std::pair{"value", &v}})
    if (drop_last(t->shape(), has_heads ? 3 : 2) != batch)
      value_error(
          kSdpa, std::string(name) + " must have query's batch dims " + shape_str(batch) + "; got " + shapes);
  if (!has_heads) return;
  if (v.size(-3) != k.size(-3))
    value_error(kSdpa,
                "value must have key's " + std::to_string(k.size(-3)) + " heads in dim -3; got " + shapes);
  const std::int64_t hq = q.size(-3), hkv = k.size(-3);
  if (hq == hkv) return;
  if (!enable_gqa)
    value_error(kSdpa, "key and value have " + std::to_string(hkv) + " heads in dim -3, query " +
                           std::to_string(hq) +
                           "; enable_gqa=True lets query heads be a multiple "
                           "of key/value heads; got " +
                           shapes);
  if (hkv == 0 || hq % hkv != 0)
    value_error(kSdpa, "with enable_gqa, query heads (" + std::to_string(hq) +
                           ") must be a multiple of key/value heads (" + std::to_string(hkv) + "); got " +
                           shapes);
}

// attn_mask broadcast to the weights' (..., L, S), then as (B, H, L, S).
template <class T>
BasicTensor<T> mask_as_bhls(const BasicTensor<T>& m, const Shape& weights) {
  const auto fail = [&] {
    value_error(kSdpa,
                "attn_mask " + m.shape_string() +
                    " must broadcast to the attention weights' shape (..., L, S) = " + shape_str(weights));
  };
  if (m.rank() > static_cast<std::int64_t>(weights.size())) fail();
  BasicTensor<T> expanded;
  try {
    expanded = m.expand(weights);
  } catch (const Error&) {
    fail();
  }
  return as_bhld(expanded);
}

py::object sdpa(py::handle query, py::handle key, py::handle value, py::handle attn_mask, double dropout_p,
                bool is_causal, std::optional<double> scale, bool enable_gqa) {
  const Tensor q = float_array(query, kSdpa, "query");
  const Tensor k = float_array(key, kSdpa, "key");
  const Tensor v = float_array(value, kSdpa, "value");
  check_qkv(q, k, v, enable_gqa);
  if (!(dropout_p >= 0.0 && dropout_p <= 1.0))
    value_error(kSdpa, "dropout_p must be a probability in [0, 1], got " + std::to_string(dropout_p));

  Shape weights = drop_last(q.shape(), 1);
  weights.push_back(k.size(-2));  // (..., L, S)
  SdpaOptions options;
  const MaskTensor mask = mask_array(attn_mask, kSdpa, "attn_mask");
  if (const auto* m = std::get_if<BoolTensor>(&mask)) options.mask &= Mask::keep(mask_as_bhls(*m, weights));
  if (const auto* m = std::get_if<Tensor>(&mask)) options.mask &= Mask::bias(mask_as_bhls(*m, weights));
  if (is_causal) options.mask &= Mask::causal(Align::top_left);
  options.scale = scale;
  if (dropout_p > 0.0) options.dropout = {dropout_p, next_seed()};

  AttentionResult r;
  {
    py::gil_scoped_release release;
    r = scaled_dot_product_attention(as_bhld(q), as_bhld(k), as_bhld(v), options);
  }
  Shape out_shape = drop_last(q.shape(), 1);
  out_shape.push_back(v.size(-1));  // (..., L, Ev)
  return to_numpy(r.out.reshape(out_shape));
}

py::object masked_softmax_d2l(py::handle x, py::handle valid_lens) {
  constexpr std::string_view kOp = "masked_softmax";
  const Tensor t = float_array(x, kOp, "X");
  std::optional<IndexTensor> lens;
  if (!valid_lens.is_none()) lens = index_array(valid_lens, kOp, "valid_lens");
  Tensor out;
  {
    py::gil_scoped_release release;
    out = masked_softmax(t, lens, MaskFill::d2l);
  }
  return to_numpy(out);
}

}  // namespace

void register_ops(py::module_& m) {
  py::options options;  // the signatures are the docstrings' first lines, in torch's spelling
  options.disable_function_signatures();
  m.def(
      "scaled_dot_product_attention", &sdpa, "query"_a, "key"_a, "value"_a, "attn_mask"_a = py::none(),
      "dropout_p"_a = 0.0, "is_causal"_a = false, py::kw_only(), "scale"_a = py::none(),
      "enable_gqa"_a = false,
      R"(scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, *, scale=None, enable_gqa=False)
--

softmax(query @ key^T * scale + mask) @ value, as torch.nn.functional's.

query (..., L, E), key (..., S, E), value (..., S, Ev) -> (..., L, Ev), float32.
The dims before the last two are batch dims, the last of them the heads
(N, ..., H, L, E); (L, E) and (N, L, E) work too. key and value have query's
batch dims. With enable_gqa, query's Hq heads may be a multiple of key's and
value's H: query head h reads key/value head h // (Hq // H).

attn_mask broadcasts to the weights' (..., L, S): bool keeps the True entries
(True takes part), float32 is added to the scores (-inf blocks). is_causal
keeps key j <= query i (top-left aligned). Given both, both apply (torch
refuses the pair). A query row with no key left gets zeros, never NaN.
scale and enable_gqa are keyword-only, as in torch; scale defaults to
1 / sqrt(E). dropout_p drops weights with probability p and scales the rest
by 1 / (1 - p), whether or not a module is training, as torch does; the draws
follow attn.manual_seed.

Inputs are read in place, with their strides, no copy.)");

  m.def("masked_softmax", &masked_softmax_d2l, "X"_a, "valid_lens"_a = py::none(),
        R"(masked_softmax(X, valid_lens=None)
--

d2l's masked_softmax: softmax over the last axis of X, keeping the first
valid_lens[...] entries of each row.

X (B, L, S) float32 (any rank >= 1) -> X's shape. valid_lens: None, (B) (one
length for every row of X[b]) or X's shape without its last dim (one length
per row), integers in [0, S]. Masked entries become -1e6 before the softmax,
as in d2l, so a row with length 0 is uniform.)");
}

}  // namespace attn::python
