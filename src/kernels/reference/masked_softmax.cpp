// Reference masked softmax over rows, in double.
#include <cmath>
#include <limits>
#include <vector>

#include "kernels/reference/reference.hpp"

namespace attn::detail {
namespace {
constexpr double kD2lMaskedScore = -1e6;  // d2l's sequence_mask value
constexpr double kNegInf = -std::numeric_limits<double>::infinity();
}  // namespace

void masked_softmax_reference(const MaskedSoftmaxParams& p) {
  std::vector<double> s(static_cast<std::size_t>(p.cols));
  for (std::int64_t r = 0; r < p.rows; ++r) {
    const std::int64_t valid = p.row_length(r);
    const float* x = p.x + r * p.x_row_stride;
    double max = kNegInf;
    for (std::int64_t c = 0; c < p.cols; ++c) {
      if (c < valid) {
        s[c] = x[c * p.x_col_stride];
      } else {
        s[c] = p.fill == MaskFill::d2l ? kD2lMaskedScore : kNegInf;
      }
      max = std::max(max, s[c]);
    }
    double sum = 0.0;
    if (max != kNegInf)
      for (std::int64_t c = 0; c < p.cols; ++c) sum += std::exp(s[c] - max);
    float* out = p.out + r * p.cols;
    for (std::int64_t c = 0; c < p.cols; ++c)
      out[c] = sum > 0 ? static_cast<float>(std::exp(s[c] - max) / sum) : 0.0f;
  }
}

}  // namespace attn::detail
