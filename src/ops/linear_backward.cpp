// linear_backward: dx = dy W, dW = dy^T x, db = sum over rows of dy.
#include <cstdint>

#include "attn/backward.hpp"
#include "kernels/cpu/linear_blas.hpp"
#include "kernels/reference/reference.hpp"
#include "ops/check.hpp"
#include "ops/linear_rows.hpp"

namespace attn {

LinearGrads linear_backward(const Tensor& x, const Tensor& weight, const Tensor& dy, bool has_bias,
                            Kernel kernel) {
  constexpr std::string_view kOp = "linear_backward";
  detail::check_rank(kOp, "weight", weight, 2, "(out_features, in_features)");
  const std::int64_t out_features = weight.size(0), in_features = weight.size(1);
  const std::string shapes = detail::describe("x", x) + ", " + detail::describe("weight", weight) + ", " +
                             detail::describe("dy", dy);
  if (x.rank() < 1 || x.size(-1) != in_features)
    detail::fail(kOp, "x must end in in_features = " + std::to_string(in_features) + "; " + shapes);
  Shape y_shape = x.shape();
  y_shape.back() = out_features;
  if (dy.shape() != y_shape)
    detail::fail(kOp, "dy must have the output's shape " + shape_str(y_shape) + "; " + shapes);
  if (kernel == Kernel::fused)
    detail::fail(kOp,
                 "has no fused kernel: Kernel::fused was requested; use Kernel::automatic or "
                 "Kernel::reference; " +
                     shapes);

  const std::int64_t rows = shape_numel(Shape(x.shape().begin(), x.shape().end() - 1));
  const Tensor x_rows = detail::linear_rows(x, rows, in_features);
  const Tensor dy_rows = dy.contiguous();
  const Tensor w = weight.contiguous();
  LinearGrads g;
  g.dx = Tensor::zeros(x.shape());
  g.dweight = Tensor::zeros(weight.shape());
  if (has_bias) g.dbias = Tensor::zeros({out_features});

  detail::LinearBackwardParams p;
  p.x = x_rows.data();
  p.x_row_stride = x_rows.stride(0);
  p.x_col_stride = x_rows.stride(1);
  p.weight = w.data();
  p.rows = rows;
  p.in = in_features;
  p.out = out_features;
  p.dy = dy_rows.data();
  p.dx = g.dx.data();
  p.dweight = g.dweight.data();
  p.dbias = has_bias ? g.dbias.data() : nullptr;
  if (kernel == Kernel::reference || !detail::fits_blas(rows, in_features, out_features, p.x_row_stride)) {
    detail::linear_backward_reference(p);
  } else {
    detail::linear_backward_blas(p);
  }
  return g;
}

}  // namespace attn
