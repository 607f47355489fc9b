// Reference additive attention backward, in double: the shared tail gives dS of
// each score; here it flows back through score = w_v . tanh(W_q q + W_k k).
#include <cmath>
#include <vector>

#include "kernels/reference/reference.hpp"

namespace attn::detail {

void additive_attention_backward_reference(const AdditiveBackwardParams& p) {
  const std::int64_t H = p.hidden;
  // forward: qp = W_q q (B, Lq, Hd), kp = W_k k (B, Lk, Hd);  so now: the same.
  const std::vector<double> qp =
      additive_projection(p.q, p.q_stride, p.batch, p.queries, p.query_dim, p.w_q, H);
  const std::vector<double> kp = additive_projection(p.k, p.k_stride, p.batch, p.keys, p.key_dim, p.w_k, H);
  std::vector<double> dqp(qp.size()), dkp(kp.size());  // (B, Lq, Hd), (B, Lk, Hd)
  std::vector<double> dw_v(static_cast<std::size_t>(H));

  const ScoreFn score = [&](std::int64_t b, std::int64_t, std::int64_t i, std::int64_t j) {
    double sum = 0.0;
    for (std::int64_t h = 0; h < H; ++h)
      sum += p.w_v[h] * std::tanh(qp[(b * p.queries + i) * H + h] + kp[(b * p.keys + j) * H + h]);
    return sum;
  };
  attend_backward_reference(
      p, p.grad, score, [&](std::int64_t b, std::int64_t, std::int64_t i, std::int64_t j, double ds) {
        // forward: score += w_v[h] * tanh(q[h] + k[h]);
        // so now: dw_v[h] += dS t_h, and the pre-activation q[h] + k[h] gets
        // dS w_v[h] (1 - t_h^2), which both projections receive.
        for (std::int64_t h = 0; h < H; ++h) {
          const std::size_t qi = (b * p.queries + i) * H + h, kj = (b * p.keys + j) * H + h;
          const double t = std::tanh(qp[qi] + kp[kj]);
          dw_v[h] += ds * t;
          const double dpre = ds * p.w_v[h] * (1.0 - t * t);
          dqp[qi] += dpre;
          dkp[kj] += dpre;
        }
      });

  // forward: out[b, l, h] = sum_d w[h, d] x[b, l, d]  (additive_projection);
  // so now: dx[b, l, d] = sum_h dout[b, l, h] w[h, d] and dw[h, d] = sum_{b, l} dout[b, l, h] x[b, l, d].
  const auto unproject = [&](const std::vector<double>& dproj, const float* x, const Strides4& stride,
                             std::int64_t len, std::int64_t dim, const float* w, float* dx, float* dw) {
    std::vector<double> dw_acc(static_cast<std::size_t>(H * dim));
    for (std::int64_t b = 0; b < p.batch; ++b)
      for (std::int64_t l = 0; l < len; ++l)
        for (std::int64_t d = 0; d < dim; ++d) {
          double sum = 0.0;
          for (std::int64_t h = 0; h < H; ++h) {
            const double g = dproj[(b * len + l) * H + h];
            sum += g * w[h * dim + d];
            dw_acc[h * dim + d] += g * x[stride.at(b, 0, l, d)];
          }
          dx[(b * len + l) * dim + d] = static_cast<float>(sum);
        }
    for (std::size_t n = 0; n < dw_acc.size(); ++n) dw[n] = static_cast<float>(dw_acc[n]);
  };
  unproject(dqp, p.q, p.q_stride, p.queries, p.query_dim, p.w_q, p.dq, p.dw_q);
  unproject(dkp, p.k, p.k_stride, p.keys, p.key_dim, p.w_k, p.dk, p.dw_k);
  for (std::int64_t h = 0; h < H; ++h) p.dw_v[h] = static_cast<float>(dw_v[h]);
}

}  // namespace attn::detail
