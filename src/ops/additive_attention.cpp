// additive_attention: validation and layout for the Bahdanau scoring function.
#include "attn/ops.hpp"
#include "kernels/reference/reference.hpp"
#include "mask_view.hpp"
#include "ops/attention_io.hpp"
#include "ops/check.hpp"

namespace attn {

namespace {
constexpr std::string_view kOp = "additive_attention";
}

AttentionResult additive_attention(const Tensor& queries, const Tensor& keys, const Tensor& values,
                                   const Tensor& w_q, const Tensor& w_k, const Tensor& w_v,
                                   const AdditiveOptions& options) {
  detail::check_rank(kOp, "queries", queries, 3, "(B, Lq, Dq)");
  detail::check_rank(kOp, "keys", keys, 3, "(B, Lk, Dk)");
  detail::check_rank(kOp, "values", values, 3, "(B, Lk, Dv)");
  detail::check_rank(kOp, "w_q", w_q, 2, "(num_hiddens, Dq)");
  detail::check_rank(kOp, "w_k", w_k, 2, "(num_hiddens, Dk)");
  detail::check_rank(kOp, "w_v", w_v, 2, "(1, num_hiddens)");
  const std::string all = detail::describe("queries", queries) + ", " + detail::describe("keys", keys) +
                          ", " + detail::describe("values", values) + ", " + detail::describe("w_q", w_q) +
                          ", " + detail::describe("w_k", w_k) + ", " + detail::describe("w_v", w_v);
  const std::int64_t B = queries.size(0), Lq = queries.size(1), Dq = queries.size(2);
  const std::int64_t Lk = keys.size(1), Dk = keys.size(2), Dv = values.size(2);
  const std::int64_t hidden = w_q.size(0);
  if (keys.size(0) != B || values.size(0) != B)
    detail::fail(kOp, "queries, keys and values must have the same batch size; " + all);
  if (values.size(1) != Lk) detail::fail(kOp, "keys and values must have the same length; " + all);
  if (w_q.size(1) != Dq) detail::fail(kOp, "w_q must have Dq = " + std::to_string(Dq) + " columns; " + all);
  if (w_k.size(1) != Dk) detail::fail(kOp, "w_k must have Dk = " + std::to_string(Dk) + " columns; " + all);
  if (w_k.size(0) != hidden || w_v.size(0) != 1 || w_v.size(1) != hidden)
    detail::fail(kOp, "w_k must be (num_hiddens, Dk) and w_v (1, num_hiddens) with w_q's num_hiddens = " +
                          std::to_string(hidden) + "; " + all);
  detail::check_probability(kOp, "dropout p", options.dropout.p, all);
  if (options.kernel == Kernel::fused)
    detail::fail(kOp, "has no fused kernel: Kernel::fused was requested; use Kernel::automatic or "
                      "Kernel::reference; " + all);
  const detail::MaskView mask = detail::resolve_mask(kOp, options.mask, B, 1, Lq, Lk);

  const Tensor q = queries.unsqueeze(1), k = keys.unsqueeze(1), v = values.unsqueeze(1);
  const Tensor wq = w_q.contiguous(), wk = w_k.contiguous(), wv = w_v.contiguous();
  AttentionResult result;
  result.out = Tensor::empty({B, Lq, Dv});
  detail::AdditiveParams p;
  detail::set_attention_io(p, v, result.out.unsqueeze(1), mask, options, result);
  p.query_dim = Dq;
  p.key_dim = Dk;
  p.hidden = hidden;
  p.q = q.data();
  p.q_stride = detail::Strides4::of(q);
  p.k = k.data();
  p.k_stride = detail::Strides4::of(k);
  p.w_q = wq.data();
  p.w_k = wk.data();
  p.w_v = wv.data();
  detail::additive_attention_reference(p);
  detail::ran_reference(options.kernel, result);
  // One head: drop the head dim of lse and weights.
  result.lse = result.lse.select(1, 0);
  if (options.need_weights) result.weights = result.weights.select(1, 0);
  return result;
}

}  // namespace attn
