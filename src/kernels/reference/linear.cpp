// Reference linear map y = x W^T + b, in double.
#include "kernels/reference/reference.hpp"

namespace attn::detail {

void linear_reference(const LinearParams& p) {
  for (std::int64_t r = 0; r < p.rows; ++r) {
    const float* x = p.x + r * p.x_row_stride;
    for (std::int64_t o = 0; o < p.out; ++o) {
      double sum = p.bias != nullptr ? p.bias[o] : 0.0;
      const float* w = p.weight + o * p.in;
      for (std::int64_t c = 0; c < p.in; ++c) sum += static_cast<double>(w[c]) * x[c * p.x_col_stride];
      p.y[r * p.out + o] = static_cast<float>(sum);
    }
  }
}

}  // namespace attn::detail
