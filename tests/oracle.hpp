// Independent long-double oracles for the tests: plain loops over Tensor
// accessors, written to be read. Nothing here calls the library's ops. Inputs may
// be float tensors or long-double ones (BasicTensor<long double>), which the
// gradient checks perturb by steps that float cannot hold.
//
// Conventions (include/attn/ops.hpp, include/attn/mask.hpp):
//  - a score is scale * q.k + bias; a masked score becomes -inf (MaskFill::neg_inf)
//    or -1e6 after scaling (MaskFill::d2l, d2l's sequence_mask value);
//  - weights = softmax of the row; a row whose scores are all -inf gets zero
//    weights, zero output and lse = -inf (so a fully masked neg_inf row is zeros,
//    and a fully masked d2l row is uniform over all keys);
//  - lse = log(sum_j exp(score_j)) over the filled row.
#pragma once

#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <vector>

#include "attn/ops.hpp"
#include "attn/tensor.hpp"

namespace attn::test {

using Index = std::int64_t;
// Whether query i of (b, h) may see key j.
using AllowedFn = std::function<bool(Index b, Index h, Index i, Index j)>;
// The additive term of score (b, h, i, j); -inf blocks.
using BiasFn = std::function<long double(Index b, Index h, Index i, Index j)>;
// The unmasked score of (b, h, i, j).
using ScoreFn = std::function<long double(Index b, Index h, Index i, Index j)>;

// The factor of weight (b, h, i, j) in the weighted sum of the values: dropout's
// keep / (1 - p), or 0. Empty: 1 (no dropout).
using DropFn = std::function<long double(Index b, Index h, Index i, Index j)>;

inline const AllowedFn kAllowAll = [](Index, Index, Index, Index) { return true; };
inline const BiasFn kNoBias = [](Index, Index, Index, Index) { return 0.0L; };

inline constexpr long double kD2lFill = -1e6L;
inline constexpr long double kOracleNegInf = -std::numeric_limits<long double>::infinity();

// Row-major (B, H, Lq, ...) results as flat vectors.
struct OracleResult {
  std::vector<long double> out;      // (B, H, Lq, Dv)
  std::vector<long double> lse;      // (B, H, Lq)
  std::vector<long double> weights;  // (B, H, Lq, Lk)
};

// The score that enters the softmax: `score` where allowed, else the fill's value.
inline long double masked_score(bool allowed, long double score, MaskFill fill) {
  return allowed ? score : fill == MaskFill::d2l ? kD2lFill : kOracleNegInf;
}

// The one softmax of the test oracles: w = softmax of one row of masked scores;
// returns the lse (-inf for an empty row, whose weights are all zero).
inline long double oracle_softmax_row(const std::vector<long double>& s,
                                      std::vector<long double>& w) {
  long double max = kOracleNegInf;
  for (long double x : s) max = std::max(max, x);
  w.assign(s.size(), 0.0L);
  if (max == kOracleNegInf) return kOracleNegInf;
  long double sum = 0;
  for (long double x : s) sum += std::exp(x - max);
  for (std::size_t j = 0; j < s.size(); ++j) w[j] = std::exp(s[j] - max) / sum;
  return max + std::log(sum);
}

// The attention of every (b, h, i) row over Lk keys. v: (B, Hkv, Lk, Dv); query
// head h reads value head h / (H / Hkv). `applied`, when given, replaces the
// softmax weights in the weighted sum of the values (the dropped-out weights an op
// applied): (B, H, Lq, Lk); `drop`, when given, multiplies them. r.weights stays
// the softmax.
template <class T>
OracleResult oracle_attend(Index B, Index H, Index Lq, Index Lk, const BasicTensor<T>& v,
                           const ScoreFn& score, const AllowedFn& allowed, const BiasFn& bias,
                           MaskFill fill, const Tensor* applied = nullptr, const DropFn& drop = {}) {
  const Index Hkv = v.size(1), Dv = v.size(3);
  const Index group = H / Hkv;
  OracleResult r;
  std::vector<long double> s(static_cast<std::size_t>(Lk)), w;
  for (Index b = 0; b < B; ++b)
    for (Index h = 0; h < H; ++h)
      for (Index i = 0; i < Lq; ++i) {
        for (Index j = 0; j < Lk; ++j) {
          const bool a = allowed(b, h, i, j);
          s[j] = masked_score(a, a ? score(b, h, i, j) + bias(b, h, i, j) : 0.0L, fill);
        }
        r.lse.push_back(oracle_softmax_row(s, w));
        r.weights.insert(r.weights.end(), w.begin(), w.end());
        for (Index d = 0; d < Dv; ++d) {
          long double acc = 0;
          for (Index j = 0; j < Lk; ++j) {
            const long double weight = applied ? static_cast<long double>((*applied)(b, h, i, j))
                                               : drop ? w[j] * drop(b, h, i, j) : w[j];
            acc += weight * static_cast<long double>(v(b, h / group, j, d));
          }
          r.out.push_back(acc);
        }
      }
  return r;
}

// softmax(scale * q k^T + bias, masked) v for 4-D q (B, Hq, Lq, Dk),
// k (B, Hkv, Lk, Dk), v (B, Hkv, Lk, Dv).
template <class T>
OracleResult oracle_attention(const BasicTensor<T>& q, const BasicTensor<T>& k, const BasicTensor<T>& v,
                              long double scale, const AllowedFn& allowed = kAllowAll,
                              const BiasFn& bias = kNoBias, MaskFill fill = MaskFill::neg_inf,
                              const DropFn& drop = {}) {
  const Index group = q.size(1) / k.size(1);
  const ScoreFn score = [&](Index b, Index h, Index i, Index j) {
    long double dot = 0;
    for (Index d = 0; d < q.size(3); ++d)
      dot += static_cast<long double>(q(b, h, i, d)) * static_cast<long double>(k(b, h / group, j, d));
    return scale * dot;
  };
  return oracle_attend(q.size(0), q.size(1), q.size(2), k.size(2), v, score, allowed, bias, fill,
                       nullptr, drop);
}

// Additive attention: score = sum_h w_v[0, h] tanh(sum_d W_q[h, d] q_d + sum_d W_k[h, d] k_d)
// (+ bias). queries (B, Lq, Dq), keys (B, Lk, Dk), values (B, Lk, Dv); one head.
template <class T>
OracleResult oracle_additive(const BasicTensor<T>& queries, const BasicTensor<T>& keys,
                             const BasicTensor<T>& values, const BasicTensor<T>& w_q,
                             const BasicTensor<T>& w_k, const BasicTensor<T>& w_v,
                             const AllowedFn& allowed = kAllowAll, MaskFill fill = MaskFill::neg_inf,
                             const DropFn& drop = {}, const BiasFn& bias = kNoBias) {
  const ScoreFn score = [&](Index b, Index, Index i, Index j) {
    long double s = 0;
    for (Index h = 0; h < w_q.size(0); ++h) {
      long double pre = 0;
      for (Index d = 0; d < queries.size(2); ++d)
        pre += static_cast<long double>(w_q(h, d)) * static_cast<long double>(queries(b, i, d));
      for (Index d = 0; d < keys.size(2); ++d)
        pre += static_cast<long double>(w_k(h, d)) * static_cast<long double>(keys(b, j, d));
      s += static_cast<long double>(w_v(0, h)) * std::tanh(pre);
    }
    return s;
  };
  return oracle_attend(queries.size(0), 1, queries.size(1), keys.size(1), values.unsqueeze(1),
                       score, allowed, bias, fill, nullptr, drop);
}

}  // namespace attn::test
