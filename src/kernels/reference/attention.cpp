// Reference attention: for each query row, the masked softmax of its scores and
// the weighted sum of the values, in double.
#include <vector>

#include "kernels/dropout.hpp"
#include "kernels/reference/reference.hpp"

namespace attn::detail {

void attend_reference(const AttentionParams& p, const ScoreFn& score) {
  const MaskView& mask = *p.mask;
  const std::int64_t group = kv_group(p.q_heads, p.kv_heads);
  const double keep_scale = p.dropout.p < 1.0 ? 1.0 / (1.0 - p.dropout.p) : 0.0;
  std::vector<double> w(static_cast<std::size_t>(p.keys));
  std::vector<double> acc(static_cast<std::size_t>(p.value_dim));
  for (std::int64_t b = 0; b < p.batch; ++b) {
    for (std::int64_t h = 0; h < p.q_heads; ++h) {
      for (std::int64_t i = 0; i < p.queries; ++i) {
        const std::int64_t row = (b * p.q_heads + h) * p.queries + i;
        for (std::int64_t j = 0; j < p.keys; ++j)
          w[j] = mask.allowed(b, h, i, j) ? score(b, h, i, j) + mask.bias(b, h, i, j) : masked_score(p.fill);
        p.lse[row] = static_cast<float>(softmax_row(w));

        std::fill(acc.begin(), acc.end(), 0.0);
        for (std::int64_t j = 0; j < p.keys; ++j) {
          const double softmax = w[j];
          double applied = softmax;
          if (p.dropout.p > 0.0) {
            const auto index = static_cast<std::uint64_t>(row * p.keys + j);
            applied = dropout_keeps(p.dropout.seed, index, p.dropout.p) ? softmax * keep_scale : 0.0;
          }
          if (p.weights != nullptr)
            p.weights[row * p.keys + j] = static_cast<float>(p.weights_before_dropout ? softmax : applied);
          if (applied == 0.0) continue;
          const float* v = p.v + p.v_stride.at(b, h / group, j, 0);
          for (std::int64_t d = 0; d < p.value_dim; ++d) acc[d] += applied * v[d * p.v_stride.j];
        }
        float* out = p.out + p.out_stride.at(b, h, i, 0);
        for (std::int64_t d = 0; d < p.value_dim; ++d) out[d * p.out_stride.j] = static_cast<float>(acc[d]);
      }
    }
  }
}

double sdpa_score(const SdpaParams& p, std::int64_t b, std::int64_t h, std::int64_t i, std::int64_t j) {
  const float* q = p.q + p.q_stride.at(b, h, i, 0);
  const float* k = p.k + p.k_stride.at(b, h / kv_group(p.q_heads, p.kv_heads), j, 0);
  double dot = 0.0;
  for (std::int64_t d = 0; d < p.key_dim; ++d)
    dot += static_cast<double>(q[d * p.q_stride.j]) * k[d * p.k_stride.j];
  return p.scale * dot;
}

void sdpa_reference(const SdpaParams& p) {
  attend_reference(p, [&p](std::int64_t b, std::int64_t h, std::int64_t i, std::int64_t j) {
    return sdpa_score(p, b, h, i, j);
  });
}

}  // namespace attn::detail
