// Reference attention: for each query row, the masked softmax of its scores and
// the weighted sum of the values, in double.
#include <cmath>
#include <limits>
#include <vector>

#include "kernels/dropout.hpp"
#include "kernels/reference/reference.hpp"

namespace attn::detail {
namespace {
// d2l's sequence_mask value: what a masked score becomes under MaskFill::d2l.
constexpr double kD2lMaskedScore = -1e6;
constexpr double kNegInf = -std::numeric_limits<double>::infinity();
}  // namespace

void attend_reference(const AttentionParams& p, const ScoreFn& score) {
  const MaskView& mask = *p.mask;
  // Query heads per key/value head (GQA); 1 when there are no heads at all.
  const std::int64_t group = p.kv_heads > 0 ? p.q_heads / p.kv_heads : 1;
  std::vector<double> s(static_cast<std::size_t>(p.keys));
  std::vector<double> acc(static_cast<std::size_t>(p.value_dim));
  for (std::int64_t b = 0; b < p.batch; ++b) {
    for (std::int64_t h = 0; h < p.q_heads; ++h) {
      const std::int64_t hk = h / group;
      for (std::int64_t i = 0; i < p.queries; ++i) {
        const std::int64_t row = (b * p.q_heads + h) * p.queries + i;
        // Scores, with masked ones replaced as `fill` says.
        double max = kNegInf;
        for (std::int64_t j = 0; j < p.keys; ++j) {
          const bool allowed = mask.allowed(b, h, i, j);
          if (!allowed) {
            s[j] = p.fill == MaskFill::d2l ? kD2lMaskedScore : kNegInf;
          } else {
            s[j] = score(b, h, i, j) + mask.bias(b, h, i, j);
          }
          max = std::max(max, s[j]);
        }
        // softmax(s) = exp(s - max) / sum; a row with nothing allowed (max = -inf)
        // gets zero weights and lse -inf instead of 0/0.
        double sum = 0.0;
        if (max != kNegInf)
          for (std::int64_t j = 0; j < p.keys; ++j) sum += std::exp(s[j] - max);
        p.lse[row] = static_cast<float>(sum > 0 ? max + std::log(sum) : kNegInf);

        std::fill(acc.begin(), acc.end(), 0.0);
        const double keep_scale = p.dropout.p < 1.0 ? 1.0 / (1.0 - p.dropout.p) : 0.0;
        for (std::int64_t j = 0; j < p.keys; ++j) {
          double w = sum > 0 ? std::exp(s[j] - max) / sum : 0.0;
          if (p.dropout.p > 0.0) {
            const auto index = static_cast<std::uint64_t>(row * p.keys + j);
            w = dropout_keeps(p.dropout.seed, index, p.dropout.p) ? w * keep_scale : 0.0;
          }
          if (p.weights != nullptr) p.weights[row * p.keys + j] = static_cast<float>(w);
          if (w == 0.0) continue;
          const float* v = p.v + p.v_stride.at(b, hk, j, 0);
          for (std::int64_t d = 0; d < p.value_dim; ++d) acc[d] += w * v[d * p.v_stride.j];
        }
        float* out = p.out + p.out_stride.at(b, h, i, 0);
        for (std::int64_t d = 0; d < p.value_dim; ++d)
          out[d * p.out_stride.j] = static_cast<float>(acc[d]);
      }
    }
  }
}

void sdpa_reference(const SdpaParams& p) {
  const std::int64_t group = p.kv_heads > 0 ? p.q_heads / p.kv_heads : 1;
  attend_reference(p, [&p, group](std::int64_t b, std::int64_t h, std::int64_t i, std::int64_t j) {
    const float* q = p.q + p.q_stride.at(b, h, i, 0);
    const float* k = p.k + p.k_stride.at(b, h / group, j, 0);
    double dot = 0.0;
    for (std::int64_t d = 0; d < p.key_dim; ++d)
      dot += static_cast<double>(q[d * p.q_stride.j]) * k[d * p.k_stride.j];
    return p.scale * dot;
  });
}

}  // namespace attn::detail
