// Reference masked softmax backward over rows, in double.
#include "kernels/reference/reference.hpp"

namespace attn::detail {

void masked_softmax_backward_reference(const MaskedSoftmaxBackwardParams& p) {
  for (std::int64_t r = 0; r < p.rows; ++r) {
    const std::int64_t valid = p.lengths != nullptr ? p.lengths[r / p.rows_per_length] : p.cols;
    const float* y = p.out + r * p.cols;
    const float* dy = p.dy + r * p.cols;
    // forward: out = softmax(s), so ds[c] = y[c] (dy[c] - sum_j y[j] dy[j]);
    double D = 0.0;
    for (std::int64_t c = 0; c < p.cols; ++c) D += static_cast<double>(y[c]) * dy[c];
    // forward: s[c] = c < valid ? x[c] : masked_score(p.fill);
    // so now: dx = ds where c < valid, and 0 where the fill, a constant, replaced x.
    float* dx = p.dx + r * p.cols;
    for (std::int64_t c = 0; c < p.cols; ++c)
      dx[c] = c < valid ? static_cast<float>(y[c] * (dy[c] - D)) : 0.0f;
  }
}

}  // namespace attn::detail
