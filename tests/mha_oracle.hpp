// A long-double multi-head attention for the module tests, computed with plain
// loops straight from a MultiHeadAttention's parameter tensors and the inputs.
// Nothing here calls the library's ops; the softmax and the masked-score fill are
// oracle.hpp's, the one reference of both.
//
// The semantics are nn.MultiheadAttention's (include/attn/modules.hpp):
//  - inputs (L, B, X), (B, L, X) with batch_first, or (L, X) unbatched;
//  - q = query W_q^T + b_q, k = key W_k^T + b_k, v = value W_v^T + b_v, where
//    W_q, W_k, W_v are the row blocks of in_proj_weight when every width is E,
//    else q_proj_weight, k_proj_weight, v_proj_weight; in_proj_bias is [b_q; b_k; b_v];
//  - add_bias_kv appends bias_k / bias_v as one more key / value, add_zero_attn then
//    a zero key and value; masks never block these extra keys nor add to their scores;
//  - head h owns the contiguous columns [h D, (h + 1) D) of each projection;
//  - score = q.k / sqrt(D) + float masks; blocked scores become -inf (MaskFill::neg_inf)
//    or -1e6 (MaskFill::d2l); a row whose scores are all -inf gets zero weights;
//  - boolean key_padding_mask (B, S) / attn_mask (L, S) or (B * H, L, S): true = blocked;
//    is_causal blocks j > i; valid_lens (B) or (B, L) (unbatched: () or (L)) blocks j >= len;
//  - fo.mask, an attn::Mask over the (B, H, L, S) real keys: its boolean pattern is
//    attn::materialize(fo.mask, B, H, L, S) (checked on its own in test_mask.cpp), and
//    its additive terms are the `mask_bias` tensor that the test passes alongside;
//  - output = concat(heads) out_proj.weight^T + out_proj.bias (or the concatenation
//    alone without out_proj); weights (B, L, S') averaged over heads or (B, H, L, S').
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <optional>
#include <stdexcept>
#include <variant>
#include <vector>

#include "attn/mask.hpp"
#include "attn/modules.hpp"
#include "attn/tensor.hpp"
#include "oracle.hpp"

namespace attn::test::mha {

using Index = std::int64_t;
using Real = long double;

// A dense row-major (n0, n1, n2) array.
struct Array3 {
  Index n0, n1, n2;
  std::vector<Real> v;
  Array3(Index a, Index b, Index c) : n0(a), n1(b), n2(c), v(static_cast<std::size_t>(a * b * c), 0.0L) {}
  std::size_t at(Index i, Index j, Index k) const { return static_cast<std::size_t>((i * n1 + j) * n2 + k); }
  Real& operator()(Index i, Index j, Index k) { return v[at(i, j, k)]; }
  Real operator()(Index i, Index j, Index k) const { return v[at(i, j, k)]; }
};

struct Result {
  Shape output_shape;
  std::vector<Real> output;  // row-major in output_shape
  Shape weights_shape;
  std::vector<Real> weights;  // the softmax weights (never dropped out), row-major
};

// Element (b, l, c) of a module input in its own layout.
template <class T>
Real input_at(const BasicTensor<T>& x, bool batch_first, Index b, Index l, Index c) {
  if (x.rank() == 2) return x(l, c);
  return batch_first ? x(b, l, c) : x(l, b, c);
}

// (B, len, P): x W[row0 : row0 + P]^T + bias[bias0 : bias0 + P] (no bias if undefined).
template <class T>
Array3 project(const BasicTensor<T>& x, bool batch_first, Index B, Index len, const BasicTensor<T>& W,
               Index row0, Index P, const BasicTensor<T>& bias, Index bias0) {
  Array3 y(B, len, P);
  const Index in = x.size(-1);
  for (Index b = 0; b < B; ++b)
    for (Index l = 0; l < len; ++l)
      for (Index p = 0; p < P; ++p) {
        Real acc = bias.defined() ? static_cast<Real>(bias(bias0 + p)) : 0.0L;
        for (Index c = 0; c < in; ++c)
          acc += input_at(x, batch_first, b, l, c) * static_cast<Real>(W(row0 + p, c));
        y(b, l, p) = acc;
      }
  return y;
}

// Whether key j < S (a real key) is allowed for (b, h, i), and what float masks add.
struct MaskEntry {
  bool allowed = true;
  Real add = 0;
};

// fo.mask over the real keys: `pattern` (B, H, L, S) from attn::materialize, `bias`
// the test's own (B, H, L, S) view of the mask's additive terms, or undefined.
struct ExtraMask {
  BoolTensor pattern;
  Tensor bias;
};

inline MaskEntry mask_at(const MultiHeadForwardOptions& fo, const ExtraMask& extra, bool batched, Index H,
                         Index b, Index h, Index i, Index j) {
  MaskEntry e;
  if (extra.pattern.defined()) {
    const Real add = extra.bias.defined() ? static_cast<Real>(extra.bias(b, h, i, j)) : 0.0L;
    // A -inf bias blocks by adding -inf under either fill (include/attn/ops.hpp), so
    // it is added rather than filled; materialize reports it as blocked too.
    e.allowed &= extra.pattern(b, h, i, j) || add == kOracleNegInf;
    e.add += add;
  }
  if (const auto* m = std::get_if<BoolTensor>(&fo.key_padding_mask))
    e.allowed &= !(batched ? (*m)(b, j) : (*m)(j));
  if (const auto* m = std::get_if<Tensor>(&fo.key_padding_mask)) e.add += batched ? (*m)(b, j) : (*m)(j);
  if (const auto* m = std::get_if<BoolTensor>(&fo.attn_mask))
    e.allowed &= !(m->rank() == 2 ? (*m)(i, j) : (*m)(b * H + h, i, j));
  if (const auto* m = std::get_if<Tensor>(&fo.attn_mask))
    e.add += m->rank() == 2 ? (*m)(i, j) : (*m)(b * H + h, i, j);
  if (fo.is_causal) e.allowed &= j <= i;
  if (fo.valid_lens) {  // (B) or (B, L); unbatched, () or (L)
    const IndexTensor& len = *fo.valid_lens;
    const bool per_query = len.rank() == (batched ? 2 : 1);
    e.allowed &= j < (batched ? (per_query ? len(b, i) : len(b)) : (per_query ? len(i) : len()));
  }
  return e;
}

// The forward's intermediate values, batch-major, for the bounds of the gradient
// checks (grad_bounds.hpp).
struct Internals {
  Array3 q{0, 0, 0}, k{0, 0, 0}, v{0, 0, 0};  // (B, L, Pqk), (B, S', Pqk), (B, S', Pv)
  Array3 concat{0, 0, 0};                     // (B, L, Pv): the heads' output
  std::vector<Real> weights;                  // (B, H, L, S'): the softmax
  std::vector<Real> lse;                      // (B, H, L)
  std::vector<bool> allowed;                  // (B, H, L, S'): the score is not masked
};

// The module's forward in long double. `m` is a MultiHeadAttention, or any type with
// its options() and parameter members (the gradient checks' long-double copy).
// `head_weights`, when given, replaces the
// softmax weights in the weighted sum of the values (the dropped-out weights a
// module returned in training): (B, H, L, S') or, unbatched, (H, L, S'); `drop`,
// when given, multiplies them by dropout's factor of (b, h, i, j).
// `mask_bias`: the sum of fo.mask's bias terms, broadcastable to (B, H, L, S); it
// must be given when fo.mask has bias terms. `internals`, when given, receives the
// intermediate values.
template <class M, class T>
Result multi_head_attention(const M& m, const BasicTensor<T>& query, const BasicTensor<T>& key,
                            const BasicTensor<T>& value, const MultiHeadForwardOptions& fo,
                            const Tensor* head_weights = nullptr, const Tensor* mask_bias = nullptr,
                            const DropFn& drop = {}, Internals* internals = nullptr) {
  const MultiHeadAttentionOptions& o = m.options();
  const Index E = o.embed_dim, H = o.num_heads;
  const Index Dq_in = o.qdim.value_or(E), Dk_in = o.kdim.value_or(E), Dv_in = o.vdim.value_or(E);
  const Index Pqk = o.qk_proj_dim.value_or(E), Pv = o.v_proj_dim.value_or(E);
  const bool packed = Dq_in == E && Dk_in == E && Dv_in == E && Pqk == E && Pv == E;
  const bool batched = query.rank() == 3, bf = o.batch_first;
  const Index seq_dim = batched && bf ? 1 : 0;
  const Index B = batched ? query.size(bf ? 0 : 1) : 1;
  const Index L = query.size(seq_dim), S = key.size(seq_dim);
  const Index Dqk = Pqk / H, Dv = Pv / H;

  ExtraMask extra;
  if (!fo.mask.bias_terms().empty() && mask_bias == nullptr)
    throw std::invalid_argument("mha oracle: fo.mask has bias terms; pass their sum as mask_bias");
  if (!fo.mask.is_none()) extra.pattern = materialize(fo.mask, B, H, L, S);
  if (mask_bias != nullptr) extra.bias = mask_bias->expand({B, H, L, S});

  // ---- projections: (B, L, Pqk), (B, S', Pqk), (B, S', Pv) ----
  const auto& bias = m.in_proj_bias;
  const Array3 q = project(query, bf, B, L, packed ? m.in_proj_weight : m.q_proj_weight, 0, Pqk, bias, 0);
  const Array3 k_real = project(key, bf, B, S, packed ? m.in_proj_weight : m.k_proj_weight,
                                packed ? Pqk : 0, Pqk, bias, Pqk);
  const Array3 v_real = project(value, bf, B, S, packed ? m.in_proj_weight : m.v_proj_weight,
                                packed ? 2 * Pqk : 0, Pv, bias, 2 * Pqk);
  const Index Sx = S + (o.add_bias_kv ? 1 : 0) + (o.add_zero_attn ? 1 : 0);
  Array3 k(B, Sx, Pqk), v(B, Sx, Pv);  // extra rows start as zeros (add_zero_attn)
  for (Index b = 0; b < B; ++b) {
    for (Index j = 0; j < S; ++j) {
      for (Index p = 0; p < Pqk; ++p) k(b, j, p) = k_real(b, j, p);
      for (Index p = 0; p < Pv; ++p) v(b, j, p) = v_real(b, j, p);
    }
    if (o.add_bias_kv) {
      for (Index p = 0; p < Pqk; ++p) k(b, S, p) = static_cast<Real>(m.bias_k(0, 0, p));
      for (Index p = 0; p < Pv; ++p) v(b, S, p) = static_cast<Real>(m.bias_v(0, 0, p));
    }
  }

  // ---- per head: scores, softmax, weighted sum into the concatenation ----
  const Real scale = 1.0L / std::sqrt(static_cast<Real>(Dqk));
  std::vector<Real> w4(static_cast<std::size_t>(B * H * L * Sx), 0.0L);  // (B, H, L, S')
  Array3 concat(B, L, Pv);
  std::vector<Real> s(static_cast<std::size_t>(Sx)), row;
  for (Index b = 0; b < B; ++b)
    for (Index h = 0; h < H; ++h)
      for (Index i = 0; i < L; ++i) {
        for (Index j = 0; j < Sx; ++j) {
          Real dot = 0;
          for (Index d = 0; d < Dqk; ++d) dot += q(b, i, h * Dqk + d) * k(b, j, h * Dqk + d);
          const MaskEntry e = j < S ? mask_at(fo, extra, batched, H, b, h, i, j) : MaskEntry{};
          s[j] = masked_score(e.allowed, dot * scale + e.add, fo.fill);
        }
        const Real lse = oracle_softmax_row(s, row);
        Real* w = &w4[static_cast<std::size_t>(((b * H + h) * L + i) * Sx)];
        std::copy(row.begin(), row.end(), w);
        if (internals) {
          internals->lse.push_back(lse);
          for (Index j = 0; j < Sx; ++j)
            internals->allowed.push_back(j >= S || mask_at(fo, extra, batched, H, b, h, i, j).allowed);
        }
        for (Index j = 0; j < Sx; ++j) {
          Real wj = w[j];
          if (head_weights) wj = batched ? (*head_weights)(b, h, i, j) : (*head_weights)(h, i, j);
          if (drop) wj *= drop(b, h, i, j);
          for (Index d = 0; d < Dv; ++d) concat(b, i, h * Dv + d) += wj * v(b, j, h * Dv + d);
        }
      }

  // ---- output projection, written in the module's layout ----
  Result r;
  const Index Eout = o.out_proj ? E : Pv;
  r.output_shape = !batched ? Shape{L, Eout} : bf ? Shape{B, L, Eout} : Shape{L, B, Eout};
  r.output.assign(static_cast<std::size_t>(B * L * Eout), 0.0L);
  for (Index b = 0; b < B; ++b)
    for (Index i = 0; i < L; ++i)
      for (Index e = 0; e < Eout; ++e) {
        Real y = concat(b, i, e);
        if (o.out_proj) {
          y = m.out_proj_bias.defined() ? static_cast<Real>(m.out_proj_bias(e)) : 0.0L;
          for (Index p = 0; p < Pv; ++p) y += concat(b, i, p) * static_cast<Real>(m.out_proj_weight(e, p));
        }
        const Index row = !batched ? i : bf ? b * L + i : i * B + b;
        r.output[static_cast<std::size_t>(row * Eout + e)] = y;
      }

  // ---- weights: (B, L, S') averaged over heads, or (B, H, L, S') ----
  if (fo.need_weights) {
    if (fo.average_attn_weights) {
      r.weights_shape = batched ? Shape{B, L, Sx} : Shape{L, Sx};
      r.weights.assign(static_cast<std::size_t>(B * L * Sx), 0.0L);
      for (Index b = 0; b < B; ++b)
        for (Index h = 0; h < H; ++h)
          for (Index x = 0; x < L * Sx; ++x)
            r.weights[static_cast<std::size_t>(b * L * Sx + x)] +=
                w4[static_cast<std::size_t>((b * H + h) * L * Sx + x)] / static_cast<Real>(H);
    } else {
      r.weights_shape = batched ? Shape{B, H, L, Sx} : Shape{H, L, Sx};
      r.weights = w4;
    }
  }
  if (internals) {
    internals->q = q;
    internals->k = k;
    internals->v = v;
    internals->concat = concat;
    internals->weights = w4;
  }
  return r;
}

// ---- d2l's attention pooling (DotProductAttention, AdditiveAttention) ----

// weights = masked_softmax(score, valid_lens) over the Lk keys, out = weights values:
// oracle_attend with one head. valid_lens (B) or (B, Lq): key j is kept iff j < len;
// a masked score becomes -1e6 (MaskFill::d2l) or -inf (a row with nothing kept then
// gets zero weights). `dropped`, when given, replaces the weights in the weighted
// sum: (B, Lq, Lk). values (B, Lk, Dv).
inline OracleResult attention_pooling(const std::function<Real(Index b, Index i, Index j)>& score, Index B,
                                      Index Lq, const Tensor& values, const std::optional<IndexTensor>& valid_lens,
                                      MaskFill fill, const Tensor* dropped = nullptr) {
  const Index Lk = values.size(1);
  const AllowedFn kept = [&](Index b, Index, Index i, Index j) {
    return !valid_lens || j < (valid_lens->rank() == 1 ? (*valid_lens)(b) : (*valid_lens)(b, i));
  };
  const ScoreFn one_head = [&](Index b, Index, Index i, Index j) { return score(b, i, j); };
  const Tensor dropped4 = dropped ? dropped->unsqueeze(1) : Tensor{};  // (B, 1, Lq, Lk)
  return oracle_attend(B, 1, Lq, Lk, values.unsqueeze(1), one_head, kept, kNoBias, fill,
                       dropped ? &dropped4 : nullptr);
}

// d2l's modules return the weights before dropout (as d2l does), so the dropped-out
// weights their output used are not returned. They are recovered here: for each row
// (b, i), among the subsets of its k nonzero `weights` (the oracle's softmax,
// (B, Lq, Lk) row-major), the kept set whose sum_j w_j / (1 - p) values(b, j) is
// nearest out(b, i); the result holds w_j / (1 - p) for the kept keys and 0 for the
// others, (B, Lq, Lk). All 2^k subsets are tried (k <= 16). The caller then checks
// that these weights explain the output within its budget: no kept set does for an
// output that is not a dropout of the softmax.
inline Tensor dropped_weights_explaining(const Tensor& out, const std::vector<Real>& weights,
                                         const Tensor& values, double p) {
  const Index B = out.size(0), Lq = out.size(1), Dv = out.size(2), Lk = values.size(1);
  Tensor dropped = Tensor::zeros({B, Lq, Lk});
  for (Index b = 0; b < B; ++b)
    for (Index i = 0; i < Lq; ++i) {
      const Real* w = &weights[static_cast<std::size_t>((b * Lq + i) * Lk)];
      std::vector<Index> live;
      for (Index j = 0; j < Lk; ++j)
        if (w[j] > 0) live.push_back(j);
      if (live.size() > 16) throw std::invalid_argument("dropped_weights_explaining: more than 16 keys in a row");
      std::uint32_t best = 0;
      Real best_distance = std::numeric_limits<Real>::infinity();
      for (std::uint32_t kept = 0; kept < (1u << live.size()); ++kept) {
        Real distance = 0;
        for (Index d = 0; d < Dv; ++d) {
          Real y = 0;
          for (std::size_t n = 0; n < live.size(); ++n)
            if (kept >> n & 1u) y += w[live[n]] / (1 - static_cast<Real>(p)) * values(b, live[n], d);
          distance += (y - out(b, i, d)) * (y - out(b, i, d));
        }
        if (distance < best_distance) best_distance = distance, best = kept;
      }
      for (std::size_t n = 0; n < live.size(); ++n)
        if (best >> n & 1u) dropped(b, i, live[n]) = static_cast<float>(w[live[n]] / (1 - static_cast<Real>(p)));
    }
  return dropped;
}

}  // namespace attn::test::mha
