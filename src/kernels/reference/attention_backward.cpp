// Reference attention backward, in double, row by row: the FlashAttention-2
// formulation that params.hpp states (P from the saved lse, D_i = rowsum(dO o O)),
// each step beside the line of attention.cpp that it inverts.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "kernels/dropout.hpp"
#include "kernels/reference/reference.hpp"

namespace attn::detail {
namespace {

constexpr double kNegInf = -std::numeric_limits<double>::infinity();

// log(sum_j exp(s_j)) of one row of filled scores; -inf when all are -inf.
double log_sum_exp(const std::vector<double>& s) {
  const double max = *std::max_element(s.begin(), s.end());
  if (max == kNegInf) return kNegInf;
  double sum = 0.0;
  for (double x : s) sum += std::exp(x - max);
  return max + std::log(sum);
}

// Rounds double accumulators into the float gradient they stand for.
void store(const std::vector<double>& from, float* to) {
  for (std::size_t n = 0; n < from.size(); ++n) to[n] = static_cast<float>(from[n]);
}

}  // namespace

void attend_backward_reference(const AttentionParams& p, const AttentionGradParams& g, const ScoreFn& score,
                               const ScoreGradFn& score_grad) {
  const MaskView& mask = *p.mask;
  const std::int64_t group = kv_group(p.q_heads, p.kv_heads);
  const double keep_scale = p.dropout.p < 1.0 ? 1.0 / (1.0 - p.dropout.p) : 0.0;
  // Gradients accumulate in double and are rounded once, at the end.
  std::vector<double> dv(static_cast<std::size_t>(p.batch * p.kv_heads * p.keys * p.value_dim));
  std::vector<std::vector<double>> dbias;
  for (const BiasGrad& t : g.dbias) dbias.emplace_back(static_cast<std::size_t>(t.numel));
  std::vector<double> s(static_cast<std::size_t>(p.keys));
  std::vector<bool> allowed(static_cast<std::size_t>(p.keys));

  for (std::int64_t b = 0; b < p.batch; ++b) {
    for (std::int64_t h = 0; h < p.q_heads; ++h) {
      for (std::int64_t i = 0; i < p.queries; ++i) {
        const std::int64_t row = (b * p.q_heads + h) * p.queries + i;
        // forward: w[j] = mask.allowed(b, h, i, j) ? score(b, h, i, j) + mask.bias(b, h, i, j)
        //                                          : masked_score(p.fill);
        // so now: the same scores, to take the softmax again.
        for (std::int64_t j = 0; j < p.keys; ++j) {
          allowed[j] = mask.allowed(b, h, i, j);
          s[j] = allowed[j] ? score(b, h, i, j) + mask.bias(b, h, i, j) : masked_score(p.fill);
        }
        // forward: p.lse[row] = softmax_row(w);  (w = exp(s - lse))
        // so now: P from the saved lse. Under d2l's fill a row with nothing allowed has
        // lse near -1e6, where float keeps 2^-5 of it, so that path (reference only)
        // takes the lse again in double instead.
        const double lse = p.fill == MaskFill::d2l ? log_sum_exp(s) : p.lse[row];
        // forward: a row with nothing allowed (lse = -inf) has zero weights and output;
        // so now: it adds nothing to any gradient.
        if (lse == kNegInf) continue;

        const float* dout = g.dout + g.dout_stride.at(b, h, i, 0);
        const float* out = p.out + p.out_stride.at(b, h, i, 0);
        // D_i = rowsum(dO_i o O_i) = sum_j P_ij dP_ij, read off the saved output.
        double D = 0.0;
        for (std::int64_t d = 0; d < p.value_dim; ++d)
          D += static_cast<double>(dout[d * g.dout_stride.j]) * out[d * p.out_stride.j];

        for (std::int64_t j = 0; j < p.keys; ++j) {
          const double P = std::exp(s[j] - lse);
          // forward: applied = dropout_keeps(seed, row * keys + j, p) ? softmax * keep_scale : 0.0;
          // so now: the same decision, from the same seed and position.
          double keep = 1.0;
          if (p.dropout.p > 0.0) {
            const auto index = static_cast<std::uint64_t>(row * p.keys + j);
            keep = dropout_keeps(p.dropout.seed, index, p.dropout.p) ? keep_scale : 0.0;
          }
          // forward: acc[d] += applied * v[d];
          // so now: dv[j] += applied * dO_i, and d(applied) = dO_i . v_j.
          const float* v = p.v + p.v_stride.at(b, h / group, j, 0);
          // data() + offset, not &dv[offset]: with Dv = 0 the vector is empty.
          double* dv_j = dv.data() + ((b * p.kv_heads + h / group) * p.keys + j) * p.value_dim;
          double dapplied = 0.0;
          for (std::int64_t d = 0; d < p.value_dim; ++d) {
            const double dO = dout[d * g.dout_stride.j];
            dapplied += dO * v[d * p.v_stride.j];
            dv_j[d] += P * keep * dO;
          }
          // forward: w = softmax(s), so dL/ds_j = P_j (dL/dP_j - sum_l P_l dL/dP_l)
          const double dP = keep * dapplied;
          const double dS = P * (dP - D);
          // forward: a masked score is the fill, a constant; so now: dS stops there.
          if (!allowed[j]) continue;
          // forward: s = score + sum of the bias terms; so now: each term gets dS.
          if (j < mask.keys)
            for (std::size_t t = 0; t < dbias.size(); ++t) dbias[t][g.dbias[t].stride.at(b, h, i, j)] += dS;
          score_grad(b, h, i, j, dS);
        }
      }
    }
  }
  store(dv, g.dv);
  for (std::size_t t = 0; t < dbias.size(); ++t) store(dbias[t], g.dbias[t].data);
}

void sdpa_backward_reference(const SdpaBackwardParams& p) {
  const std::int64_t group = kv_group(p.q_heads, p.kv_heads);
  std::vector<double> dq(static_cast<std::size_t>(p.batch * p.q_heads * p.queries * p.key_dim));
  std::vector<double> dk(static_cast<std::size_t>(p.batch * p.kv_heads * p.keys * p.key_dim));
  const ScoreFn score = [&p](std::int64_t b, std::int64_t h, std::int64_t i, std::int64_t j) {
    return sdpa_score(p, b, h, i, j);
  };
  attend_backward_reference(
      p, p.grad, score, [&](std::int64_t b, std::int64_t h, std::int64_t i, std::int64_t j, double ds) {
        // forward: score = scale * sum_d q[b, h, i, d] k[b, h / group, j, d];
        // so now: dq_i += scale dS k_j, and dk_j += scale dS q_i, summed over the query
        // heads that share key head h / group.
        const float* q = p.q + p.q_stride.at(b, h, i, 0);
        const float* k = p.k + p.k_stride.at(b, h / group, j, 0);
        double* dq_i = dq.data() + ((b * p.q_heads + h) * p.queries + i) * p.key_dim;  // Dk may be 0
        double* dk_j = dk.data() + ((b * p.kv_heads + h / group) * p.keys + j) * p.key_dim;
        for (std::int64_t d = 0; d < p.key_dim; ++d) {
          dq_i[d] += p.scale * ds * k[d * p.k_stride.j];
          dk_j[d] += p.scale * ds * q[d * p.q_stride.j];
        }
      });
  store(dq, p.dq);
  store(dk, p.dk);
}

}  // namespace attn::detail
