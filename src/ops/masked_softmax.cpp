// masked_softmax: d2l's softmax over the last axis with valid lengths.
#include <algorithm>

#include "attn/ops.hpp"
#include "kernels/reference/reference.hpp"
#include "ops/check.hpp"

namespace attn {

namespace {
constexpr std::string_view kOp = "masked_softmax";
}

Tensor masked_softmax(const Tensor& x, const std::optional<IndexTensor>& valid_lens, MaskFill fill) {
  if (x.rank() < 1) detail::fail(kOp, "X must have at least 1 dim, got " + detail::describe("X", x));
  const std::int64_t cols = x.size(-1);
  const std::int64_t rows = x.numel() / std::max<std::int64_t>(cols, 1);
  const Shape row_shape(x.shape().begin(), x.shape().end() - 1);

  // d2l repeats 1-D lengths over the rows of each leading index and flattens
  // 2-D ones: one length per leading index, or one per row.
  IndexTensor lens;
  std::int64_t rows_per_length = 1;
  if (valid_lens) {
    lens = valid_lens->contiguous();
    const bool per_leading = x.rank() >= 2 && lens.rank() == 1 && lens.size(0) == x.size(0);
    const bool per_row = lens.shape() == row_shape;
    if (!per_leading && !per_row)
      detail::fail(kOp, "valid_lens " + lens.shape_string() + " must be (" +
                            std::to_string(x.rank() >= 2 ? x.size(0) : 0) + ") or " +
                            shape_str(row_shape) + " for " + detail::describe("X", x));
    for (std::int64_t len : lens.to_vector())
      if (len < 0 || len > cols)
        detail::fail(kOp, "valid_lens " + lens.shape_string() + " holds " + std::to_string(len) +
                              ", outside [0, " + std::to_string(cols) + "] for " +
                              detail::describe("X", x));
    if (!per_row) rows_per_length = rows / std::max<std::int64_t>(x.size(0), 1);
  }

  // Rows must be addressable with one row stride; any other view is copied.
  const Tensor rows_view = x.contiguous().reshape({rows, cols});
  Tensor out = Tensor::empty(x.shape());
  detail::MaskedSoftmaxParams p;
  p.x = rows_view.data();
  p.x_row_stride = rows_view.stride(0);
  p.x_col_stride = rows_view.stride(1);
  p.out = out.data();
  p.rows = rows;
  p.cols = cols;
  p.lengths = valid_lens ? lens.data() : nullptr;
  p.rows_per_length = std::max<std::int64_t>(rows_per_length, 1);
  p.fill = fill;
  detail::masked_softmax_reference(p);
  return out;
}

}  // namespace attn
