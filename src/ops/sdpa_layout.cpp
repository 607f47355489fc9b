#include "ops/sdpa_layout.hpp"

#include <cmath>

#include "ops/check.hpp"

namespace attn::detail {

SdpaLayout sdpa_layout(std::string_view op, const Tensor& q_in, const Tensor& k_in, const Tensor& v_in,
                       const SdpaOptions& options) {
  SdpaLayout l;
  l.as_passed = describe("query", q_in) + ", " + describe("key", k_in) + ", " + describe("value", v_in);
  l.rank = q_in.rank();
  if ((l.rank != 3 && l.rank != 4) || k_in.rank() != l.rank || v_in.rank() != l.rank)
    fail(op, "query, key and value must all be 4-D (B, H, L, D) or all 3-D (B, L, D); " + l.as_passed);
  l.q = l.as_heads(q_in);
  l.k = l.as_heads(k_in);
  l.v = l.as_heads(v_in);
  const Tensor &q = l.q, &k = l.k, &v = l.v;
  const auto mismatch = [&](const std::string& what) { fail(op, what + "; " + l.as_passed); };
  if (q.size(0) != k.size(0) || q.size(0) != v.size(0))
    mismatch("query, key and value must have the same batch size");
  if (k.size(1) != v.size(1)) mismatch("key and value must have the same number of heads");
  if (k.size(1) == 0 ? q.size(1) != 0 : q.size(1) % k.size(1) != 0)
    mismatch("query heads (" + std::to_string(q.size(1)) + ") must be a multiple of key/value heads (" +
             std::to_string(k.size(1)) + ")");
  if (k.size(2) != v.size(2)) mismatch("key and value must have the same length");
  if (q.size(3) != k.size(3)) mismatch("query and key must have the same head dim");

  l.B = q.size(0);
  l.Hq = q.size(1);
  l.Hkv = k.size(1);
  l.Lq = q.size(2);
  l.Lk = k.size(2);
  l.Dk = q.size(3);
  l.Dv = v.size(3);
  l.out_shape = l.rank == 3 ? Shape{l.B, l.Lq, l.Dv} : Shape{l.B, l.Hq, l.Lq, l.Dv};
  l.lse_shape = l.rank == 3 ? Shape{l.B, l.Lq} : Shape{l.B, l.Hq, l.Lq};

  l.scale = options.scale.value_or(l.Dk > 0 ? 1.0 / std::sqrt(static_cast<double>(l.Dk)) : 1.0);
  if (!std::isfinite(l.scale))
    fail(op, "scale must be finite, got " + std::to_string(l.scale) + "; " + l.as_passed);
  check_probability(op, "dropout p", options.dropout.p, l.as_passed);
  return l;
}

}  // namespace attn::detail
