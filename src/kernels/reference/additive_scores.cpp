// Reference additive (Bahdanau) attention: score(q, k) = w_v . tanh(W_q q + W_k k).
#include <cmath>
#include <vector>

#include "kernels/reference/reference.hpp"

namespace attn::detail {

std::vector<double> additive_projection(const float* x, const Strides4& stride, std::int64_t batch,
                                        std::int64_t len, std::int64_t dim, const float* w,
                                        std::int64_t hidden) {
  std::vector<double> out(static_cast<std::size_t>(batch * len * hidden));
  for (std::int64_t b = 0; b < batch; ++b)
    for (std::int64_t l = 0; l < len; ++l)
      for (std::int64_t h = 0; h < hidden; ++h) {
        double sum = 0.0;
        for (std::int64_t d = 0; d < dim; ++d)
          sum += static_cast<double>(w[h * dim + d]) * x[stride.at(b, 0, l, d)];
        out[(b * len + l) * hidden + h] = sum;
      }
  return out;
}

void additive_attention_reference(const AdditiveParams& p) {
  const std::vector<double> qp =
      additive_projection(p.q, p.q_stride, p.batch, p.queries, p.query_dim, p.w_q, p.hidden);
  const std::vector<double> kp =
      additive_projection(p.k, p.k_stride, p.batch, p.keys, p.key_dim, p.w_k, p.hidden);
  attend_reference(p, [&](std::int64_t b, std::int64_t, std::int64_t i, std::int64_t j) {
    const double* q = &qp[(b * p.queries + i) * p.hidden];
    const double* k = &kp[(b * p.keys + j) * p.hidden];
    double score = 0.0;
    for (std::int64_t h = 0; h < p.hidden; ++h) score += p.w_v[h] * std::tanh(q[h] + k[h]);
    return score;
  });
}

}  // namespace attn::detail
