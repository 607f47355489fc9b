// nn.MultiheadAttention: projections, the head split as a view, attention per
// head written straight into the concatenated layout, and the output projection.
#include <algorithm>

#include "attn/modules.hpp"
#include "modules/init.hpp"
#include "modules/multi_head_widths.hpp"
#include "ops/check.hpp"

namespace attn {

namespace {

constexpr std::string_view kOp = "MultiHeadAttention";

using detail::Widths;
using detail::widths_of;

// (B, S, P) -> (B, S + extra, P) with rows appended by `fill_extra`.
template <class T, class F>
BasicTensor<T> append_along(const BasicTensor<T>& t, std::int64_t dim, std::int64_t extra, F&& fill_extra) {
  Shape shape = t.shape();
  const std::int64_t n = shape[dim];
  shape[dim] += extra;
  BasicTensor<T> out = BasicTensor<T>::zeros(shape);
  out.slice(dim, 0, n).copy_from(t);
  fill_extra(out.slice(dim, n, n + extra));
  return out;
}

}  // namespace

MultiHeadAttention::MultiHeadAttention(const MultiHeadAttentionOptions& options)
    : options_(options), dropout_rng_(options.seed ^ 0xd1b54a32d192ed03ULL) {
  const Widths w = widths_of(options);
  if (w.embed <= 0) detail::fail(kOp, "embed_dim must be positive, got " + std::to_string(w.embed));
  if (w.heads <= 0) detail::fail(kOp, "num_heads must be positive, got " + std::to_string(w.heads));
  if (w.query_in <= 0 || w.key_in <= 0 || w.value_in <= 0 || w.qk_proj <= 0 || w.v_proj <= 0)
    detail::fail(kOp, "qdim, kdim, vdim, qk_proj_dim and v_proj_dim must be positive, got " +
                          std::to_string(w.query_in) + ", " + std::to_string(w.key_in) + ", " +
                          std::to_string(w.value_in) + ", " + std::to_string(w.qk_proj) + ", " +
                          std::to_string(w.v_proj));
  if (w.qk_proj % w.heads != 0 || w.v_proj % w.heads != 0)
    detail::fail(kOp, "num_heads " + std::to_string(w.heads) +
                          " must divide the projected widths: query/key " + std::to_string(w.qk_proj) +
                          ", value " + std::to_string(w.v_proj) + " (embed_dim " +
                          std::to_string(w.embed) + ")");
  detail::check_probability(kOp, "dropout", options.dropout);

  Rng rng(options.seed);
  packed_ = w.query_in == w.embed && w.key_in == w.embed && w.value_in == w.embed &&
            w.qk_proj == w.embed && w.v_proj == w.embed;
  if (packed_) {
    in_proj_weight = detail::xavier_uniform({3 * w.embed, w.embed}, rng);
  } else {
    q_proj_weight = detail::xavier_uniform({w.qk_proj, w.query_in}, rng);
    k_proj_weight = detail::xavier_uniform({w.qk_proj, w.key_in}, rng);
    v_proj_weight = detail::xavier_uniform({w.v_proj, w.value_in}, rng);
  }
  if (options.bias) in_proj_bias = Tensor::zeros({2 * w.qk_proj + w.v_proj});
  if (options.add_bias_kv) {
    bias_k = detail::xavier_normal({1, 1, w.qk_proj}, rng);
    bias_v = detail::xavier_normal({1, 1, w.v_proj}, rng);
  }
  if (options.out_proj) {
    out_proj_weight = detail::uniform({w.embed, w.v_proj}, detail::linear_bound(w.v_proj), rng);
    if (options.bias) out_proj_bias = Tensor::zeros({w.embed});
  }
}

NamedParameters MultiHeadAttention::named_parameters() const {
  NamedParameters params;
  const auto add = [&params](const char* name, const Tensor& t) {
    if (t.defined()) params.emplace_back(name, t);
  };
  add("in_proj_weight", in_proj_weight);
  add("q_proj_weight", q_proj_weight);
  add("k_proj_weight", k_proj_weight);
  add("v_proj_weight", v_proj_weight);
  add("in_proj_bias", in_proj_bias);
  add("bias_k", bias_k);
  add("bias_v", bias_v);
  add("out_proj.weight", out_proj_weight);
  add("out_proj.bias", out_proj_bias);
  return params;
}

MultiHeadResult MultiHeadAttention::forward(const Tensor& query, const Tensor& key,
                                            const Tensor& value,
                                            const MultiHeadForwardOptions& fo) {
  const Widths w = widths_of(options_);
  const std::string inputs = detail::describe("query", query) + ", " + detail::describe("key", key) +
                             ", " + detail::describe("value", value);

  // ---- layout: everything is read as batch-major (B, L, width) views ------------
  const bool batched = query.rank() == 3;
  if ((query.rank() != 2 && query.rank() != 3) || key.rank() != query.rank() ||
      value.rank() != query.rank())
    detail::fail(kOp, "query, key and value must all be 3-D (" +
                          std::string(options_.batch_first ? "B, L, E" : "L, B, E") +
                          ") or all 2-D unbatched (L, E); " + inputs);
  if (query.size(-1) != w.query_in)
    detail::fail(kOp, "query width must be " + std::to_string(w.query_in) + "; " + inputs);
  if (key.size(-1) != w.key_in)
    detail::fail(kOp, "key width must be kdim = " + std::to_string(w.key_in) + "; " + inputs);
  if (value.size(-1) != w.value_in)
    detail::fail(kOp, "value width must be vdim = " + std::to_string(w.value_in) + "; " + inputs);
  // (L, B, X) or (B, L, X) or (L, X) -> (B, L, X), as a view.
  const auto batch_major = [&](const Tensor& t) {
    if (!batched) return t.unsqueeze(0);
    return options_.batch_first ? t : t.transpose(0, 1);
  };
  const std::int64_t B = batch_major(query).size(0), L = batch_major(query).size(1);
  const std::int64_t S = batch_major(key).size(1);
  if (batch_major(key).size(0) != B || batch_major(value).size(0) != B)
    detail::fail(kOp, "query, key and value must have the same batch size; " + inputs);
  if (batch_major(value).size(1) != S)
    detail::fail(kOp, "key and value must have the same length; " + inputs);

  // ---- projections, computed in the inputs' own layout (no transpose copies) ----
  const Tensor W_q = packed_ ? in_proj_weight.slice(0, 0, w.qk_proj) : q_proj_weight;
  const Tensor W_k = packed_ ? in_proj_weight.slice(0, w.qk_proj, 2 * w.qk_proj) : k_proj_weight;
  const Tensor W_v = packed_ ? in_proj_weight.slice(0, 2 * w.qk_proj, 2 * w.qk_proj + w.v_proj) : v_proj_weight;
  const auto bias_part = [&](std::int64_t from, std::int64_t to) {
    return in_proj_bias.defined() ? in_proj_bias.slice(0, from, to) : Tensor{};
  };
  Tensor q = batch_major(linear(query, W_q, bias_part(0, w.qk_proj), fo.kernel));  // (B, L, Pqk)
  Tensor k = batch_major(linear(key, W_k, bias_part(w.qk_proj, 2 * w.qk_proj), fo.kernel));  // (B, S, Pqk)
  Tensor v = batch_major(linear(value, W_v, bias_part(2 * w.qk_proj, 2 * w.qk_proj + w.v_proj), fo.kernel));  // (B, S, Pv)

  // ---- extra keys: bias_k/bias_v, then a zero key and value --------------------
  const std::int64_t extra = (options_.add_bias_kv ? 1 : 0) + (options_.add_zero_attn ? 1 : 0);
  if (options_.add_bias_kv) {
    k = append_along(k, 1, 1, [&](const Tensor& row) { row.copy_from(bias_k.expand({B, 1, w.qk_proj})); });
    v = append_along(v, 1, 1, [&](const Tensor& row) { row.copy_from(bias_v.expand({B, 1, w.v_proj})); });
  }
  if (options_.add_zero_attn) {
    k = append_along(k, 1, 1, [](const Tensor&) {});
    v = append_along(v, 1, 1, [](const Tensor&) {});
  }
  const std::int64_t Sx = S + extra;

  // ---- masks over the S real keys; the extra keys stay open to every query -------
  const std::int64_t H = w.heads;
  const Shape kpm_shape = batched ? Shape{B, S} : Shape{S};
  const auto as_key_padding = [&](const auto& m) {
    if (m.shape() != kpm_shape)
      detail::fail(kOp, "key_padding_mask " + m.shape_string() + " must be (B, S) = " + shape_str(kpm_shape) +
                            "; " + inputs);
    return m.reshape({B, 1, 1, S});
  };
  const auto as_attn_mask = [&](const auto& m) {
    const Shape two_d = {L, S}, three_d = {B * H, L, S};
    if (m.shape() == two_d) return m.reshape({1, 1, L, S});
    if (m.shape() == three_d) return m.reshape({B, H, L, S});
    detail::fail(kOp, "attn_mask " + m.shape_string() + " must be (L, S) = " + shape_str(two_d) +
                          " or (B * num_heads, L, S) = " + shape_str(three_d) + "; " + inputs);
  };
  Mask mask = fo.mask;
  if (const auto* m = std::get_if<BoolTensor>(&fo.key_padding_mask)) mask &= Mask::block(as_key_padding(*m));
  if (const auto* m = std::get_if<Tensor>(&fo.key_padding_mask)) mask &= Mask::bias(as_key_padding(*m));
  if (const auto* m = std::get_if<BoolTensor>(&fo.attn_mask)) mask &= Mask::block(as_attn_mask(*m));
  if (const auto* m = std::get_if<Tensor>(&fo.attn_mask)) mask &= Mask::bias(as_attn_mask(*m));
  if (fo.is_causal) mask &= Mask::causal(Align::top_left);
  if (fo.valid_lens) mask &= Mask::lengths(batched ? *fo.valid_lens : fo.valid_lens->unsqueeze(0));
  mask = mask.append_unmasked_keys(extra);

  // ---- attention per head, written into the concatenated (B, L, H * Dv) layout ----
  const std::int64_t Dqk = w.qk_proj / H, Dv = w.v_proj / H;
  const auto heads = [&](const Tensor& t, std::int64_t len, std::int64_t d) {
    return t.reshape({B, len, H, d}).permute({0, 2, 1, 3});  // (B, H, len, d), a view
  };
  // The output buffer in the caller's layout, so the concatenation is free.
  Tensor concat = Tensor::empty(options_.batch_first || !batched ? Shape{B, L, w.v_proj} : Shape{L, B, w.v_proj});
  SdpaOptions so;
  so.mask = mask;
  so.need_weights = fo.need_weights;
  so.fill = fo.fill;
  so.kernel = fo.kernel;
  if (training() && options_.dropout > 0) so.dropout = {options_.dropout, dropout_rng_.next_u64()};
  AttentionResult r = scaled_dot_product_attention_into(heads(q, L, Dqk), heads(k, Sx, Dqk),
                                                        heads(v, Sx, Dv), heads(batch_major(concat), L, Dv), so);

  MultiHeadResult result;
  result.output = options_.out_proj ? linear(concat, out_proj_weight, out_proj_bias, fo.kernel) : concat;
  if (!batched) result.output = result.output.reshape({L, result.output.size(-1)});
  saved_ = Saved{query, key, value, q, k, v, concat, r.lse, so, fo.kernel, batched, S, result.output.shape()};
  if (fo.need_weights) {
    Tensor weights = r.weights;  // (B, H, L, Sx)
    if (fo.average_attn_weights) {
      // Mean over heads of the contiguous (B, H, L * Sx) weights.
      Tensor mean = Tensor::zeros({B, L, Sx});
      const std::int64_t plane = L * Sx;
      for (std::int64_t b = 0; b < B; ++b)
        for (std::int64_t h = 0; h < H; ++h)
          for (std::int64_t x = 0; x < plane; ++x)
            mean.data()[b * plane + x] += weights.data()[(b * H + h) * plane + x];
      for (std::int64_t x = 0; x < mean.numel(); ++x) mean.data()[x] /= static_cast<float>(H);
      weights = mean;
    }
    result.weights = batched ? weights : weights.select(0, 0);
  }
  return result;
}

}  // namespace attn
