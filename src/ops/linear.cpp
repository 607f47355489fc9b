// linear: y = x W^T + b over the last axis of x.
#include <algorithm>
#include <cstdint>
#include <limits>

#include "attn/ops.hpp"
#include "kernels/cpu/linear_blas.hpp"
#include "kernels/reference/reference.hpp"
#include "ops/check.hpp"

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
  Tensor rows_view;
  // BLAS rows need unit column stride and a row stride of at least in_features
  // (so broadcast rows, stride 0, are copied).
  if (auto strides = detail::reshape_strides(x.shape(), x.strides(), {rows, in_features});
      strides && (*strides)[1] == 1 && (rows == 1 || (*strides)[0] >= in_features)) {
    rows_view = Tensor::wrap(x.data(), {rows, in_features}, *strides);
  } else {
    rows_view = x.contiguous().reshape({rows, in_features});
  }
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
  // BLAS takes 32-bit sizes; anything larger goes through the reference loops.
  constexpr std::int64_t kBlasMax = std::numeric_limits<std::int32_t>::max();
  const bool fits_blas = rows <= kBlasMax && in_features <= kBlasMax && out_features <= kBlasMax &&
                         p.x_row_stride <= kBlasMax;
  if (kernel == Kernel::reference || !fits_blas) {
    detail::linear_reference(p);
  } else {
    detail::linear_blas(p);
  }
  return out;
}

}  // namespace attn
