// Reference masked softmax over rows, in double; and the row softmax that every
// reference attention kernel shares.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "kernels/reference/reference.hpp"

namespace attn::detail {
namespace {
constexpr double kD2lMaskedScore = -1e6;  // d2l's sequence_mask value
constexpr double kNegInf = -std::numeric_limits<double>::infinity();
}  // namespace

double masked_score(MaskFill fill) { return fill == MaskFill::d2l ? kD2lMaskedScore : kNegInf; }

double softmax_row(std::span<double> s) {
  double max = kNegInf;
  for (double x : s) max = std::max(max, x);
  if (max == kNegInf) {
    std::fill(s.begin(), s.end(), 0.0);
    return kNegInf;
  }
  double sum = 0.0;
  for (double& x : s) {
    x = std::exp(x - max);
    sum += x;
  }
  for (double& x : s) x /= sum;
  return max + std::log(sum);
}

void masked_softmax_reference(const MaskedSoftmaxParams& p) {
  std::vector<double> s(static_cast<std::size_t>(p.cols));
  for (std::int64_t r = 0; r < p.rows; ++r) {
    const std::int64_t valid = p.lengths != nullptr ? p.lengths[r / p.rows_per_length] : p.cols;
    const float* x = p.x + r * p.x_row_stride;
    for (std::int64_t c = 0; c < p.cols; ++c) s[c] = c < valid ? x[c * p.x_col_stride] : masked_score(p.fill);
    softmax_row(s);
    float* out = p.out + r * p.cols;
    for (std::int64_t c = 0; c < p.cols; ++c) out[c] = static_cast<float>(s[c]);
  }
}

}  // namespace attn::detail
