// linear: y = x W^T + b over the last axis of x.
#include <cstdint>

#include "attn/ops.hpp"
#include "kernels/cpu/linear_blas.hpp"
#include "kernels/reference/reference.hpp"
#include "ops/check.hpp"
#include "ops/linear_rows.hpp"

namespace attn {

namespace {
constexpr std::string_view kOp = "linear";
}

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias, Kernel kernel) {
  detail::check_rank(kOp, "weight", weight, 2, "(out_features, in_features)");
  const std::int64_t out_features = weight.size(0), in_features = weight.size(1);
  if (x.rank() < 1 || x.size(-1) != in_features)
    detail::fail(kOp, "x must end in in_features = " + std::to_string(in_features) + "; " +
                          detail::describe("x", x) + ", " + detail::describe("weight", weight));
  if (bias.defined() && bias.shape() != Shape{out_features})
    detail::fail(kOp, "bias must be (out_features) = (" + std::to_string(out_features) + "); " +
                          detail::describe("bias", bias) + ", " + detail::describe("weight", weight));

  // All leading dims as rows with one row stride: a (L, B, E) input qualifies as
  // it is; a view that does not is copied once here.
  const std::int64_t rows = shape_numel(Shape(x.shape().begin(), x.shape().end() - 1));
  Shape out_shape = x.shape();
  out_shape.back() = out_features;
  Tensor out = Tensor::empty(out_shape);
  const Tensor rows_view = detail::linear_rows(x, rows, in_features);
  const Tensor w = weight.contiguous();
  const Tensor b = bias.defined() ? bias.contiguous() : Tensor{};

  detail::LinearParams p;
  p.x = rows_view.data();
  p.x_row_stride = rows_view.stride(0);
  p.x_col_stride = rows_view.stride(1);
  p.weight = w.data();
  p.bias = b.defined() ? b.data() : nullptr;
  p.y = out.data();
  p.rows = rows;
  p.in = in_features;
  p.out = out_features;
  if (kernel == Kernel::reference || !detail::fits_blas(rows, in_features, out_features, p.x_row_stride)) {
    detail::linear_reference(p);
  } else {
    detail::linear_blas(p);
  }
  return out;
}

}  // namespace attn
