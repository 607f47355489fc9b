// MultiHeadAttention's gradient checks: its parameters in long double (for the
// forwards that central differences perturb) and the bound of the rounding errors
// of its backward (grad_bounds.hpp's rule, through the module's stages).
//
// The bound assumes inputs, parameters and dL/doutput on dyadic_randn's grid
// (grad_check.hpp), as the tests draw them: then the projections q, k, v that the
// forward keeps and the gradient dL/dconcat = dL/doutput out_proj.weight are exact
// in float32, and the roundings are those of the saved heads' output (concat) and
// lse, and of each float32 gradient handed from one stage to the next.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "attn/modules.hpp"
#include "grad_bounds.hpp"
#include "mha_oracle.hpp"
#include "oracle.hpp"

namespace attn::test {

// The members mha::multi_head_attention reads, in long double.
struct LongDoubleMha {
  MultiHeadAttentionOptions opts;
  LTensor in_proj_weight, q_proj_weight, k_proj_weight, v_proj_weight, in_proj_bias;
  LTensor bias_k, bias_v, out_proj_weight, out_proj_bias;

  explicit LongDoubleMha(const MultiHeadAttention& m) : opts(m.options()) {
    for (const auto& [name, t] : m.named_parameters()) *slot(name) = widen(t);
  }
  const MultiHeadAttentionOptions& options() const { return opts; }
  // The tensor called `name` in named_parameters(); null for another name.
  LTensor* slot(const std::string& name) {
    const std::pair<const char*, LTensor*> slots[] = {{"in_proj_weight", &in_proj_weight},
                                                      {"q_proj_weight", &q_proj_weight},
                                                      {"k_proj_weight", &k_proj_weight},
                                                      {"v_proj_weight", &v_proj_weight},
                                                      {"in_proj_bias", &in_proj_bias},
                                                      {"bias_k", &bias_k},
                                                      {"bias_v", &bias_v},
                                                      {"out_proj.weight", &out_proj_weight},
                                                      {"out_proj.bias", &out_proj_bias}};
    for (const auto& [n, t] : slots)
      if (name == n) return t;
    return nullptr;
  }
};

// The bounds of every gradient MultiHeadAttention::backward returns, keyed
// "query", "key", "value" and by parameter name, row-major in each one's shape.
// query, key, value and dy (dL/doutput) in the module's layout; `in` the forward's
// internals at these inputs; `drop` the dropout factor per (b, h, i, j) or empty.
// `float_products`: the projections' products accumulate in float32 (OpenBLAS,
// Kernel::automatic), which adds gamma_n sum |terms| to each (Higham 3.1); the
// attention must still run on the reference (d2l's fill sees to that).
inline NamedBounds mha_bounds(const LongDoubleMha& m, const LTensor& query, const LTensor& key,
                              const LTensor& value, const LTensor& dy, const mha::Internals& in,
                              const DropFn& drop, MaskFill fill, bool float_products = false) {
  using Index = std::int64_t;
  using Real = long double;
  const MultiHeadAttentionOptions& o = m.opts;
  const bool batched = query.rank() == 3, bf = o.batch_first;
  const Index H = o.num_heads, B = in.q.n0, L = in.q.n1, Sx = in.k.n1;
  const Index S = key.size(batched && bf ? 1 : 0);
  const Index Pqk = in.q.n2, Pv = in.v.n2, Dqk = Pqk / H, Dv = Pv / H;
  const Index Eout = o.out_proj ? o.embed_dim : Pv;
  // Element (b, l, c) of a tensor in the module's layout, and its row-major index.
  const auto flat = [&](Index b, Index l, Index c, Index width) -> std::size_t {
    if (!batched) return static_cast<std::size_t>(l * width + c);
    return static_cast<std::size_t>((bf ? b * L + l : l * B + b) * width + c);
  };
  const auto at = [&](const LTensor& x, Index b, Index l, Index c) { return mha::input_at(x, bf, b, l, c); };
  NamedBounds r;

  // ---- output = concat out_proj.weight^T + out_proj.bias; concat was rounded ----
  mha::Array3 dconcat(B, L, Pv);  // exact: products of grid values
  for (Index b = 0; b < B; ++b)
    for (Index i = 0; i < L; ++i)
      for (Index p = 0; p < Pv; ++p) {
        if (!o.out_proj) {
          dconcat(b, i, p) = at(dy, b, i, p);
          continue;
        }
        for (Index e = 0; e < Eout; ++e) dconcat(b, i, p) += at(dy, b, i, e) * m.out_proj_weight(e, p);
      }
  // In float, each of a sum's n terms adds up to n u |term|.
  const auto summed = [&](Index n) { return float_products ? 1 + static_cast<Real>(n) : 1.0L; };
  if (o.out_proj) {
    std::vector<Real> w(static_cast<std::size_t>(Eout * Pv), 0.0L);
    for (Index b = 0; b < B; ++b)
      for (Index i = 0; i < L; ++i)
        for (Index e = 0; e < Eout; ++e)
          for (Index p = 0; p < Pv; ++p)
            w[e * Pv + p] += summed(B * L) * std::abs(at(dy, b, i, e) * in.concat(b, i, p));
    r["out_proj.weight"] = w;
    if (m.out_proj_bias.defined())
      r["out_proj.bias"] = std::vector<Real>(static_cast<std::size_t>(Eout), 0.0L);
  }

  // ---- attention per head: grad_bounds.hpp's sdpa_bound on the heads' views ----
  AttentionTerms t{B, H, H, L, Sx, Dv, in.weights, in.lse, {}, {}, {}, {}, in.allowed, fill != MaskFill::d2l};
  std::vector<Real> q4, k4;
  for (Index b = 0; b < B; ++b)
    for (Index h = 0; h < H; ++h) {
      for (Index i = 0; i < L; ++i) {
        for (Index d = 0; d < Dv; ++d) {
          t.out.push_back(in.concat(b, i, h * Dv + d));
          t.dout.push_back(dconcat(b, i, h * Dv + d));
        }
        for (Index d = 0; d < Dqk; ++d) q4.push_back(in.q(b, i, h * Dqk + d));
        for (Index j = 0; j < Sx; ++j) t.drop.push_back(drop ? drop(b, h, i, j) : 1.0L);
      }
      for (Index j = 0; j < Sx; ++j) {
        for (Index d = 0; d < Dv; ++d) t.v.push_back(in.v(b, j, h * Dv + d));
        for (Index d = 0; d < Dqk; ++d) k4.push_back(in.k(b, j, h * Dqk + d));
      }
    }
  const SdpaBound a = sdpa_bound(t, q4, k4, Dqk, 1.0L / std::sqrt(static_cast<Real>(Dqk)));
  // Each float32 gradient that the attention hands on, batch-major: the bound of its
  // error in u (the propagated error and its rounding, |dx| <= the sum of |terms|),
  // and of its size.
  struct Handed {
    mha::Array3 err, size;
  };
  const auto handed = [&](const std::vector<Real>& err, const std::vector<Real>& abs, Index len, Index D) {
    Handed f{mha::Array3(B, len, H * D), mha::Array3(B, len, H * D)};
    for (Index b = 0; b < B; ++b)
      for (Index h = 0; h < H; ++h)
        for (Index j = 0; j < len; ++j)
          for (Index d = 0; d < D; ++d) {
            const std::size_t n = static_cast<std::size_t>(((b * H + h) * len + j) * D + d);
            f.err(b, j, h * D + d) = err[n] + abs[n];
            f.size(b, j, h * D + d) = abs[n];
          }
    return f;
  };
  const Handed fq = handed(a.dq_err, a.dq_abs, L, Dqk), fk = handed(a.dk_err, a.dk_abs, Sx, Dqk);
  const Handed fv = handed(a.softmax.dv_err, a.softmax.dv_abs, Sx, Dv);

  // ---- appended keys: bias_k's gradient sums the batches' rows S ----
  if (o.add_bias_kv) {
    std::vector<Real> bk(static_cast<std::size_t>(Pqk), 0.0L), bv(static_cast<std::size_t>(Pv), 0.0L);
    for (Index b = 0; b < B; ++b) {
      for (Index p = 0; p < Pqk; ++p) bk[p] += fk.err(b, S, p);
      for (Index p = 0; p < Pv; ++p) bv[p] += fv.err(b, S, p);
    }
    r["bias_k"] = bk;
    r["bias_v"] = bv;
  }

  // ---- x W^T + b for q, k, v: dx = dq W, dW = dq^T x, db = sum dq -------------
  struct Projection {
    std::vector<Real> dx, dw, db;
  };
  const auto project = [&](const Handed& f, const LTensor& x, const LTensor& W, Index row0, Index P,
                           Index len) {
    const Index width = x.size(-1);
    Projection g{std::vector<Real>(static_cast<std::size_t>(B * len * width), 0.0L),
                 std::vector<Real>(static_cast<std::size_t>(P * width), 0.0L),
                 std::vector<Real>(static_cast<std::size_t>(P), 0.0L)};
    // dx sums over P, dW and db over the B * len rows.
    const Real over_p = summed(P) - 1, over_rows = summed(B * len) - 1;
    for (Index b = 0; b < B; ++b)
      for (Index l = 0; l < len; ++l)
        for (Index p = 0; p < P; ++p) {
          const Real err = f.err(b, l, p), size = f.size(b, l, p);
          g.db[p] += err + over_rows * size;
          for (Index c = 0; c < width; ++c) {
            g.dx[flat(b, l, c, width)] += (err + over_p * size) * std::abs(W(row0 + p, c));
            g.dw[p * width + c] += (err + over_rows * size) * std::abs(at(x, b, l, c));
          }
        }
    return g;
  };
  const bool packed = m.in_proj_weight.defined();
  const Projection pq = project(fq, query, packed ? m.in_proj_weight : m.q_proj_weight, 0, Pqk, L);
  const Projection pk =
      project(fk, key, packed ? m.in_proj_weight : m.k_proj_weight, packed ? Pqk : 0, Pqk, S);
  const Projection pv =
      project(fv, value, packed ? m.in_proj_weight : m.v_proj_weight, packed ? 2 * Pqk : 0, Pv, S);
  r["query"] = pq.dx;
  r["key"] = pk.dx;
  r["value"] = pv.dx;
  const auto join = [](std::vector<Real> a, const std::vector<Real>& b, const std::vector<Real>& c) {
    a.insert(a.end(), b.begin(), b.end());
    a.insert(a.end(), c.begin(), c.end());
    return a;
  };
  if (packed) {
    r["in_proj_weight"] = join(pq.dw, pk.dw, pv.dw);
  } else {
    r["q_proj_weight"] = pq.dw;
    r["k_proj_weight"] = pk.dw;
    r["v_proj_weight"] = pv.dw;
  }
  if (m.in_proj_bias.defined()) r["in_proj_bias"] = join(pq.db, pk.db, pv.db);
  return r;
}

}  // namespace attn::test
