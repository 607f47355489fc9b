// First-order bounds of the rounding errors of the reference backward passes: the
// E of tolerance.hpp's grad_error_bound, computed from the long-double forward's
// exact values (as float_sum_budget's condition is computed from |terms|).
//
// A reference backward computes in double from float32 values, so its error comes
// from the float32 values it reads that a forward rounded, each within u of its
// exact value, and from rounding its results once (grad_error_bound's ||G||). Each
// function here follows one backward's formulas with magnitudes and returns, per
// element of a gradient, E >= 0 such that the propagated error is within u E.
// An attention backward (src/kernels/params.hpp) reads:
//   lse_i, within u |lse_i|: P_ij = exp(s_ij - lse_i) is off by a factor 1 +- u |lse_i|
//                            (not under d2l's fill, where the backward takes lse again);
//   O_i, within u |O_i|:     D_i = dO_i . O_i is off by at most u c_i, c_i = sum_d |dO_id O_id|;
// so dS_ij = P_ij (dP_ij - D_i) is off by at most u e_ij, e_ij = |lse_i| |dS_ij| + P_ij c_i,
// and dv_j = sum_i a_ij dO_i (a = P m, m the dropout factor) by u sum_i |lse_i| a_ij |dO_i|.
// The sums that take dS on (dq, dk, a bias, the additive projections) carry e with
// the magnitudes of their other factors. Nothing here calls the library's ops.
#pragma once

#include <cmath>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "attn/mask.hpp"
#include "attn/tensor.hpp"
#include "oracle.hpp"

namespace attn::test {

using LTensor = BasicTensor<long double>;

// A long-double copy of a float tensor, contiguous, for the forwards that the
// gradient checks perturb.
inline LTensor widen(const Tensor& t) {
  LTensor out = LTensor::zeros(t.shape());
  long double* next = out.data();
  t.for_each([&next](float& x) { *next++ = x; });
  return out;
}

// The exact values of one attention forward and the gradient of its output, in
// row-major vectors, with H query heads reading Hkv key/value heads.
struct AttentionTerms {
  std::int64_t B = 0, H = 0, Hkv = 0, Lq = 0, Lk = 0, Dv = 0;
  std::vector<long double> P;     // (B, H, Lq, Lk): the softmax, before dropout
  std::vector<long double> lse;   // (B, H, Lq)
  std::vector<long double> out;   // (B, H, Lq, Dv): the output, dropout applied
  std::vector<long double> dout;  // (B, H, Lq, Dv)
  std::vector<long double> v;     // (B, Hkv, Lk, Dv)
  std::vector<long double> drop;  // (B, H, Lq, Lk): dropout's factor m, 1 without
  std::vector<bool> allowed;      // (B, H, Lq, Lk): the score is not masked
  bool lse_saved = true;          // false under MaskFill::d2l

  std::size_t row(std::int64_t b, std::int64_t h, std::int64_t i) const {
    return static_cast<std::size_t>((b * H + h) * Lq + i);
  }
  std::size_t kv(std::int64_t b, std::int64_t h, std::int64_t j) const {  // key/value row of query head h
    return static_cast<std::size_t>((b * Hkv + h / (H / Hkv)) * Lk + j);
  }
};

// The softmax part shared by every attention backward.
struct SoftmaxBound {
  std::vector<long double> dS;      // (B, H, Lq, Lk): exact, 0 where masked (it flows no further)
  std::vector<long double> e;       // (B, H, Lq, Lk): |error of dS| / u, 0 where masked
  std::vector<long double> dv_err;  // (B, Hkv, Lk, Dv): |error of dv| / u
  std::vector<long double> dv_abs;  // (B, Hkv, Lk, Dv): sum_i |a_ij dO_i|, >= |dv|
};

inline SoftmaxBound softmax_bound(const AttentionTerms& t) {
  const std::size_t scores = static_cast<std::size_t>(t.B * t.H * t.Lq * t.Lk);
  SoftmaxBound r;
  r.dS.assign(scores, 0.0L);
  r.e.assign(scores, 0.0L);
  r.dv_err.assign(static_cast<std::size_t>(t.B * t.Hkv * t.Lk * t.Dv), 0.0L);
  r.dv_abs.assign(r.dv_err.size(), 0.0L);
  for (std::int64_t b = 0; b < t.B; ++b)
    for (std::int64_t h = 0; h < t.H; ++h)
      for (std::int64_t i = 0; i < t.Lq; ++i) {
        const std::size_t row = t.row(b, h, i);
        if (std::isinf(t.lse[row])) continue;  // nothing allowed: no gradient at all
        const long double lse = t.lse_saved ? std::abs(t.lse[row]) : 0.0L;
        const long double* dO = &t.dout[row * t.Dv];
        const long double* O = &t.out[row * t.Dv];
        long double D = 0, c = 0;
        for (std::int64_t d = 0; d < t.Dv; ++d) {
          D += dO[d] * O[d];
          c += std::abs(dO[d] * O[d]);
        }
        for (std::int64_t j = 0; j < t.Lk; ++j) {
          const std::size_t s = row * t.Lk + j;
          const long double* v = &t.v[t.kv(b, h, j) * t.Dv];
          long double dP = 0;
          for (std::int64_t d = 0; d < t.Dv; ++d) dP += dO[d] * v[d];
          dP *= t.drop[s];
          const long double a = t.P[s] * t.drop[s];
          for (std::int64_t d = 0; d < t.Dv; ++d) {
            r.dv_err[t.kv(b, h, j) * t.Dv + d] += lse * a * std::abs(dO[d]);
            r.dv_abs[t.kv(b, h, j) * t.Dv + d] += std::abs(a * dO[d]);
          }
          if (!t.allowed[s]) continue;
          r.dS[s] = t.P[s] * (dP - D);
          r.e[s] = lse * std::abs(r.dS[s]) + t.P[s] * c;
        }
      }
  return r;
}

// Scaled dot-product attention: dq_i = scale sum_j dS_ij k_j, dk_j = scale sum_i dS_ij q_i.
struct SdpaBound {
  SoftmaxBound softmax;
  std::vector<long double> dq_err, dq_abs;  // (B, H, Lq, Dk)
  std::vector<long double> dk_err, dk_abs;  // (B, Hkv, Lk, Dk)
};

// q (B, H, Lq, Dk) and k (B, Hkv, Lk, Dk) row-major.
inline SdpaBound sdpa_bound(const AttentionTerms& t, const std::vector<long double>& q,
                            const std::vector<long double>& k, std::int64_t Dk, long double scale) {
  SdpaBound r;
  r.softmax = softmax_bound(t);
  r.dq_err.assign(q.size(), 0.0L);
  r.dq_abs.assign(q.size(), 0.0L);
  r.dk_err.assign(k.size(), 0.0L);
  r.dk_abs.assign(k.size(), 0.0L);
  const long double s = std::abs(scale);
  for (std::int64_t b = 0; b < t.B; ++b)
    for (std::int64_t h = 0; h < t.H; ++h)
      for (std::int64_t i = 0; i < t.Lq; ++i)
        for (std::int64_t j = 0; j < t.Lk; ++j) {
          const std::size_t n = t.row(b, h, i) * t.Lk + j;
          const long double e = r.softmax.e[n], dS = std::abs(r.softmax.dS[n]);
          if (e == 0 && dS == 0) continue;
          const std::size_t qi = t.row(b, h, i) * Dk, kj = t.kv(b, h, j) * Dk;
          for (std::int64_t d = 0; d < Dk; ++d) {
            r.dq_err[qi + d] += s * e * std::abs(k[kj + d]);
            r.dq_abs[qi + d] += s * dS * std::abs(k[kj + d]);
            r.dk_err[kj + d] += s * e * std::abs(q[qi + d]);
            r.dk_abs[kj + d] += s * dS * std::abs(q[qi + d]);
          }
        }
  return r;
}

// A bias term of shape `shape`, broadcast to (B, H, Lq, Lk): its gradient sums dS
// over the broadcast axes, so its error sums e there. Row-major in `shape`.
inline std::vector<long double> bias_bound(const AttentionTerms& t, const SoftmaxBound& s,
                                           const Shape& shape) {
  LTensor err = LTensor::zeros(shape);
  const LTensor view = err.expand({t.B, t.H, t.Lq, t.Lk});
  for (std::int64_t b = 0; b < t.B; ++b)
    for (std::int64_t h = 0; h < t.H; ++h)
      for (std::int64_t i = 0; i < t.Lq; ++i)
        for (std::int64_t j = 0; j < t.Lk; ++j) view(b, h, i, j) += s.e[t.row(b, h, i) * t.Lk + j];
  return err.to_vector();
}

// Additive attention, score_ij = sum_h w_v[h] tanh(qp_ih + kp_jh), qp = W_q q, kp = W_k k:
// dw_v[h] = sum dS t, dqp_ih = sum_j dS w_v[h] (1 - t^2) (dkp alike), dq = dqp W_q,
// dW_q = dqp^T q. queries (B, Lq, Dq), keys (B, Lk, Dk), w_q (Hd, Dq), w_k (Hd, Dk), w_v (1, Hd).
struct AdditiveBound {
  SoftmaxBound softmax;
  std::vector<long double> dq_err, dk_err, dw_q_err, dw_k_err, dw_v_err;  // the inputs' shapes
};

inline AdditiveBound additive_bound(const AttentionTerms& t, const LTensor& queries, const LTensor& keys,
                                    const LTensor& w_q, const LTensor& w_k, const LTensor& w_v) {
  const std::int64_t B = t.B, Lq = t.Lq, Lk = t.Lk, Hd = w_q.size(0), Dq = w_q.size(1), Dk = w_k.size(1);
  AdditiveBound r;
  r.softmax = softmax_bound(t);
  const auto project = [&](const LTensor& x, const LTensor& w, std::int64_t len, std::int64_t dim) {
    std::vector<long double> p(static_cast<std::size_t>(B * len * Hd), 0.0L);
    for (std::int64_t b = 0; b < B; ++b)
      for (std::int64_t l = 0; l < len; ++l)
        for (std::int64_t h = 0; h < Hd; ++h)
          for (std::int64_t d = 0; d < dim; ++d) p[(b * len + l) * Hd + h] += w(h, d) * x(b, l, d);
    return p;
  };
  const std::vector<long double> qp = project(queries, w_q, Lq, Dq), kp = project(keys, w_k, Lk, Dk);
  std::vector<long double> dqp(qp.size(), 0.0L), dkp(kp.size(), 0.0L);
  r.dw_v_err.assign(static_cast<std::size_t>(Hd), 0.0L);
  for (std::int64_t b = 0; b < B; ++b)
    for (std::int64_t i = 0; i < Lq; ++i)
      for (std::int64_t j = 0; j < Lk; ++j) {
        const long double e = r.softmax.e[t.row(b, 0, i) * Lk + j];
        if (e == 0) continue;
        for (std::int64_t h = 0; h < Hd; ++h) {
          const long double th = std::tanh(qp[(b * Lq + i) * Hd + h] + kp[(b * Lk + j) * Hd + h]);
          r.dw_v_err[h] += e * std::abs(th);
          const long double dpre = e * std::abs(w_v(0, h)) * (1 - th * th);
          dqp[(b * Lq + i) * Hd + h] += dpre;
          dkp[(b * Lk + j) * Hd + h] += dpre;
        }
      }
  const auto unproject = [&](const std::vector<long double>& dp, const LTensor& x, const LTensor& w,
                             std::int64_t len, std::int64_t dim, std::vector<long double>& dx,
                             std::vector<long double>& dw) {
    dx.assign(static_cast<std::size_t>(B * len * dim), 0.0L);
    dw.assign(static_cast<std::size_t>(Hd * dim), 0.0L);
    for (std::int64_t b = 0; b < B; ++b)
      for (std::int64_t l = 0; l < len; ++l)
        for (std::int64_t h = 0; h < Hd; ++h)
          for (std::int64_t d = 0; d < dim; ++d) {
            const long double g = dp[(b * len + l) * Hd + h];
            dx[(b * len + l) * dim + d] += g * std::abs(w(h, d));
            dw[h * dim + d] += g * std::abs(x(b, l, d));
          }
  };
  unproject(dqp, queries, w_q, Lq, Dq, r.dq_err, r.dw_q_err);
  unproject(dkp, keys, w_k, Lk, Dk, r.dk_err, r.dw_k_err);
  return r;
}

// masked_softmax_backward reads y, within u |y|: dx_c = y_c (dy_c - sum_j y_j dy_j) on
// kept c is off by u |y_c| (|dy_c - D| + sum_j |y_j dy_j|). y, dy (rows, cols) row-major,
// kept (rows, cols).
inline std::vector<long double> masked_softmax_bound(const std::vector<long double>& y,
                                                     const std::vector<long double>& dy,
                                                     const std::vector<bool>& kept, std::int64_t cols) {
  std::vector<long double> err(y.size(), 0.0L);
  for (std::size_t r0 = 0; r0 < y.size(); r0 += static_cast<std::size_t>(cols)) {
    long double D = 0, c = 0;
    for (std::int64_t j = 0; j < cols; ++j) {
      D += y[r0 + j] * dy[r0 + j];
      c += std::abs(y[r0 + j] * dy[r0 + j]);
    }
    for (std::int64_t j = 0; j < cols; ++j)
      if (kept[r0 + j]) err[r0 + j] = std::abs(y[r0 + j]) * (std::abs(dy[r0 + j] - D) + c);
  }
  return err;
}

// ---- the oracle's side of an attention check ----------------------------------------

// The mask a forward ran with, as its structural and boolean terms plus its bias
// terms, whose gradients are checked too.
struct MaskParts {
  Mask structure;
  std::vector<Tensor> biases;

  Mask full() const {
    Mask m = structure;
    for (const Tensor& b : biases) m &= Mask::bias(b);
    return m;
  }
};

// The oracle's view of a mask over (B, H, Lq, Lk): the structural pattern and the
// sum of the bias terms, read from long-double copies that the checks perturb.
struct OracleMask {
  BoolTensor pattern;
  std::vector<LTensor> biases;  // each term's own shape
  std::vector<LTensor> views;   // the same storage as (B, H, Lq, Lk)
  AllowedFn allowed;
  BiasFn bias;

  OracleMask(const MaskParts& parts, Index B, Index H, Index Lq, Index Lk)
      : pattern(materialize(parts.structure, B, H, Lq, Lk)) {
    for (const Tensor& b : parts.biases) {
      biases.push_back(widen(b));
      views.push_back(biases.back().expand({B, H, Lq, Lk}));
    }
    allowed = [this](Index b, Index h, Index i, Index j) { return pattern(b, h, i, j); };
    bias = [this](Index b, Index h, Index i, Index j) {
      long double sum = 0;
      for (const LTensor& t : views) sum += t(b, h, i, j);
      return sum;
    };
  }
  OracleMask(const OracleMask&) = delete;  // the functions point into this object
};

// AttentionTerms of an exact forward, the softmax and the gradient of its output.
inline AttentionTerms attention_terms(const OracleResult& exact, const OracleMask& mask, const DropFn& drop,
                                      const std::vector<long double>& dout, const LTensor& v4, Index H,
                                      Index Lq, MaskFill fill) {
  const Index B = v4.size(0), Hkv = v4.size(1), Lk = v4.size(2), Dv = v4.size(3);
  AttentionTerms t{B,
                   H,
                   Hkv,
                   Lq,
                   Lk,
                   Dv,
                   exact.weights,
                   exact.lse,
                   exact.out,
                   dout,
                   v4.to_vector(),
                   {},
                   {},
                   fill != MaskFill::d2l};
  for (Index b = 0; b < B; ++b)
    for (Index h = 0; h < H; ++h)
      for (Index i = 0; i < Lq; ++i)
        for (Index j = 0; j < Lk; ++j) {
          t.drop.push_back(drop ? drop(b, h, i, j) : 1.0L);
          t.allowed.push_back(mask.allowed(b, h, i, j));
        }
  return t;
}

inline Tensor heads_of(const Tensor& t) { return t.rank() == 3 ? t.unsqueeze(1) : t; }

// Dropout's factor per weight read off the weights a forward applied
// (B, H, Lq, Lk): 1 / (1 - p) where kept, 0 where dropped; empty without dropout.
inline DropFn drop_from_applied(const Tensor& applied4, double p) {
  if (p == 0) return {};
  const long double keep = p < 1 ? 1.0L / (1.0L - static_cast<long double>(p)) : 0.0L;
  return [applied4, keep](Index b, Index h, Index i, Index j) {
    return applied4(b, h, i, j) != 0 ? keep : 0.0L;
  };
}

// Bounds keyed by gradient name (inputs and parameters), each row-major in its
// gradient's shape.
using NamedBounds = std::map<std::string, std::vector<long double>>;

}  // namespace attn::test
