// MultiHeadAttention::backward: the forward's stages in reverse, each through
// its op's backward: output projection, attention per head (the same head views),
// the appended keys, and the input projections.
#include "attn/backward.hpp"
#include "attn/modules.hpp"
#include "modules/multi_head_widths.hpp"
#include "ops/check.hpp"

namespace attn {

namespace {
constexpr std::string_view kOp = "MultiHeadAttention.backward";

// Rows [from, from + n) of the packed tensor `into` receive `part`.
void place(const Tensor& into, std::int64_t from, const Tensor& part) {
  into.slice(0, from, from + part.size(0)).copy_from(part);
}
}  // namespace

AttentionModuleGrads MultiHeadAttention::backward(const Tensor& grad_output) const {
  if (!saved_) detail::fail(kOp, "there is no forward to differentiate: call forward first");
  const Saved& s = *saved_;
  if (grad_output.shape() != s.output_shape)
    detail::fail(kOp, "grad_output " + grad_output.shape_string() +
                          " must have the last forward output's shape " + shape_str(s.output_shape));
  const detail::Widths w = detail::widths_of(options_);
  const std::int64_t H = w.heads, B = s.q.size(0), L = s.q.size(1), Sx = s.k.size(1);
  const std::int64_t Dqk = w.qk_proj / H, Dv = w.v_proj / H;
  const bool sequence_first = s.batched && !options_.batch_first;
  // The caller's layout, (L, B, X) or (B, L, X) or (L, X), from batch-major (B, L, X) and back.
  const auto to_caller = [&](const Tensor& t) {
    if (!s.batched) return t.select(0, 0);
    return sequence_first ? t.transpose(0, 1) : t;
  };
  const auto heads = [&](const Tensor& t, std::int64_t len, std::int64_t d) {
    return t.reshape({B, len, H, d}).permute({0, 2, 1, 3});  // (B, H, len, d), a view
  };
  // (B, H, len, d) -> (B, len, H * d), the layout the projections wrote.
  const auto merge_heads = [&](const Tensor& t) {
    return t.permute({0, 2, 1, 3}).contiguous().reshape({B, t.size(2), t.size(1) * t.size(3)});
  };

  // The forward's kernel choice: reference, or the fast kernels (Kernel::fused names
  // attention's kernel; the projections then take OpenBLAS, as in the forward).
  const Kernel kernel = s.kernel == Kernel::reference ? Kernel::reference : Kernel::automatic;

  // ---- forward: output = linear(concat, out_proj.weight, out_proj.bias) ----------
  // concat is (B, L, Pv) or (L, B, Pv) like the output; unbatched, (1, L, Pv).
  const Tensor dy = s.batched ? grad_output : grad_output.unsqueeze(0);
  LinearGrads out_proj;
  Tensor dconcat = dy.contiguous();  // read as heads below, which needs a reshape-able view
  if (options_.out_proj) {
    out_proj = linear_backward(s.concat, out_proj_weight, dy, out_proj_bias.defined(), kernel);
    dconcat = out_proj.dx;
  }
  const auto batch_major = [&](const Tensor& t) { return sequence_first ? t.transpose(0, 1) : t; };

  // ---- forward: attention per head, written into the concatenation ----------------
  BackwardOptions bo;
  bo.kernel = kernel;
  const AttentionGrads g = scaled_dot_product_attention_backward(
      heads(s.q, L, Dqk), heads(s.k, Sx, Dqk), heads(s.v, Sx, Dv), heads(batch_major(s.concat), L, Dv), s.lse,
      heads(batch_major(dconcat), L, Dv), s.attention, bo);
  const Tensor dq = merge_heads(g.dq), dk = merge_heads(g.dk), dv = merge_heads(g.dv);  // (B, len, P)

  // ---- forward: k, v = [k; bias_k; 0], [v; bias_v; 0] (the appended keys) ---------
  // bias_k was copied to every batch: its gradient sums over them.
  const auto sum_batches = [&](const Tensor& rows) {  // (B, 1, P) -> (1, 1, P), in double
    Tensor total = Tensor::zeros({1, 1, rows.size(2)});
    for (std::int64_t p = 0; p < rows.size(2); ++p) {
      double sum = 0.0;
      for (std::int64_t b = 0; b < B; ++b) sum += rows(b, 0, p);
      total(0, 0, p) = static_cast<float>(sum);
    }
    return total;
  };
  Tensor dbias_k, dbias_v;
  if (options_.add_bias_kv) {
    dbias_k = sum_batches(dk.slice(1, s.S, s.S + 1));
    dbias_v = sum_batches(dv.slice(1, s.S, s.S + 1));
  }

  // ---- forward: q = linear(query, W_q, b_q), k = ..., v = ... (caller's layout) -------
  const Tensor W_q = packed_ ? in_proj_weight.slice(0, 0, w.qk_proj) : q_proj_weight;
  const Tensor W_k = packed_ ? in_proj_weight.slice(0, w.qk_proj, 2 * w.qk_proj) : k_proj_weight;
  const Tensor W_v =
      packed_ ? in_proj_weight.slice(0, 2 * w.qk_proj, 2 * w.qk_proj + w.v_proj) : v_proj_weight;
  const bool bias = in_proj_bias.defined();
  const LinearGrads pq = linear_backward(s.query, W_q, to_caller(dq), bias, kernel);
  const LinearGrads pk = linear_backward(s.key, W_k, to_caller(dk.slice(1, 0, s.S)), bias, kernel);
  const LinearGrads pv = linear_backward(s.value, W_v, to_caller(dv.slice(1, 0, s.S)), bias, kernel);

  AttentionModuleGrads grads;
  grads.query = pq.dx;
  grads.key = pk.dx;
  grads.value = pv.dx;
  // The names and order of named_parameters().
  NamedParameters& params = grads.params;
  // in_proj_weight and in_proj_bias stack q's, k's and v's rows.
  const auto stacked = [&](const Tensor& like, const Tensor& dq, const Tensor& dk, const Tensor& dv) {
    Tensor d = Tensor::zeros(like.shape());
    place(d, 0, dq);
    place(d, w.qk_proj, dk);
    place(d, 2 * w.qk_proj, dv);
    return d;
  };
  if (packed_) {
    params.emplace_back("in_proj_weight", stacked(in_proj_weight, pq.dweight, pk.dweight, pv.dweight));
  } else {
    params.emplace_back("q_proj_weight", pq.dweight);
    params.emplace_back("k_proj_weight", pk.dweight);
    params.emplace_back("v_proj_weight", pv.dweight);
  }
  if (bias) params.emplace_back("in_proj_bias", stacked(in_proj_bias, pq.dbias, pk.dbias, pv.dbias));
  if (options_.add_bias_kv) {
    params.emplace_back("bias_k", dbias_k);
    params.emplace_back("bias_v", dbias_v);
  }
  if (options_.out_proj) {
    params.emplace_back("out_proj.weight", out_proj.dweight);
    if (out_proj_bias.defined()) params.emplace_back("out_proj.bias", out_proj.dbias);
  }
  return grads;
}

}  // namespace attn
