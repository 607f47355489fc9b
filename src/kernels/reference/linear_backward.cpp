// Reference backward of y = x W^T + b, in double.
#include "kernels/reference/reference.hpp"

namespace attn::detail {

void linear_backward_reference(const LinearBackwardParams& p) {
  // forward: y[r, o] = b[o] + sum_c w[o, c] x[r, c];
  // so now: dx[r, c] = sum_o dy[r, o] w[o, c],
  for (std::int64_t r = 0; r < p.rows; ++r)
    for (std::int64_t c = 0; c < p.in; ++c) {
      double sum = 0.0;
      for (std::int64_t o = 0; o < p.out; ++o)
        sum += static_cast<double>(p.dy[r * p.out + o]) * p.weight[o * p.in + c];
      p.dx[r * p.in + c] = static_cast<float>(sum);
    }
  // dw[o, c] = sum_r dy[r, o] x[r, c],
  for (std::int64_t o = 0; o < p.out; ++o)
    for (std::int64_t c = 0; c < p.in; ++c) {
      double sum = 0.0;
      for (std::int64_t r = 0; r < p.rows; ++r)
        sum += static_cast<double>(p.dy[r * p.out + o]) * p.x[r * p.x_row_stride + c * p.x_col_stride];
      p.dweight[o * p.in + c] = static_cast<float>(sum);
    }
  // and db[o] = sum_r dy[r, o].
  if (p.dbias == nullptr) return;
  for (std::int64_t o = 0; o < p.out; ++o) {
    double sum = 0.0;
    for (std::int64_t r = 0; r < p.rows; ++r) sum += p.dy[r * p.out + o];
    p.dbias[o] = static_cast<float>(sum);
  }
}

}  // namespace attn::detail
