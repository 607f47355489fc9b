#include "ops/additive_layout.hpp"

#include "ops/check.hpp"

namespace attn::detail {

AdditiveLayout additive_layout(std::string_view op, const Tensor& queries, const Tensor& keys,
                               const Tensor& values, const Tensor& w_q, const Tensor& w_k, const Tensor& w_v,
                               const AdditiveOptions& options) {
  check_rank(op, "queries", queries, 3, "(B, Lq, Dq)");
  check_rank(op, "keys", keys, 3, "(B, Lk, Dk)");
  check_rank(op, "values", values, 3, "(B, Lk, Dv)");
  check_rank(op, "w_q", w_q, 2, "(num_hiddens, Dq)");
  check_rank(op, "w_k", w_k, 2, "(num_hiddens, Dk)");
  check_rank(op, "w_v", w_v, 2, "(1, num_hiddens)");
  AdditiveLayout l;
  l.as_passed = describe("queries", queries) + ", " + describe("keys", keys) + ", " +
                describe("values", values) + ", " + describe("w_q", w_q) + ", " + describe("w_k", w_k) +
                ", " + describe("w_v", w_v);
  const std::string& all = l.as_passed;
  l.B = queries.size(0);
  l.Lq = queries.size(1);
  l.Dq = queries.size(2);
  l.Lk = keys.size(1);
  l.Dk = keys.size(2);
  l.Dv = values.size(2);
  l.hidden = w_q.size(0);
  if (keys.size(0) != l.B || values.size(0) != l.B)
    fail(op, "queries, keys and values must have the same batch size; " + all);
  if (values.size(1) != l.Lk) fail(op, "keys and values must have the same length; " + all);
  if (w_q.size(1) != l.Dq) fail(op, "w_q must have Dq = " + std::to_string(l.Dq) + " columns; " + all);
  if (w_k.size(1) != l.Dk) fail(op, "w_k must have Dk = " + std::to_string(l.Dk) + " columns; " + all);
  if (w_k.size(0) != l.hidden || w_v.size(0) != 1 || w_v.size(1) != l.hidden)
    fail(op, "w_k must be (num_hiddens, Dk) and w_v (1, num_hiddens) with w_q's num_hiddens = " +
                 std::to_string(l.hidden) + "; " + all);
  check_probability(op, "dropout p", options.dropout.p, all);
  if (options.kernel == Kernel::fused)
    fail(op,
         "has no fused kernel: Kernel::fused was requested; use Kernel::automatic or "
         "Kernel::reference; " +
             all);

  l.q = queries.unsqueeze(1);
  l.k = keys.unsqueeze(1);
  l.v = values.unsqueeze(1);
  l.w_q = w_q.contiguous();
  l.w_k = w_k.contiguous();
  l.w_v = w_v.contiguous();
  return l;
}

}  // namespace attn::detail
