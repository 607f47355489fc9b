// masked_softmax: d2l's softmax over the last axis with valid lengths.
#include "attn/ops.hpp"
#include "kernels/reference/reference.hpp"
#include "ops/masked_softmax_rows.hpp"

namespace attn {

Tensor masked_softmax(const Tensor& x, const std::optional<IndexTensor>& valid_lens, MaskFill fill) {
  const detail::MaskedSoftmaxRows r = detail::masked_softmax_rows("masked_softmax", "X", x, valid_lens);
  // Rows must be addressable with one row stride; any other view is copied.
  const Tensor rows_view = x.contiguous().reshape({r.rows, r.cols});
  Tensor out = Tensor::empty(x.shape());
  detail::MaskedSoftmaxParams p;
  detail::set_rows(p, r);
  p.x = rows_view.data();
  p.x_row_stride = rows_view.stride(0);
  p.x_col_stride = rows_view.stride(1);
  p.out = out.data();
  p.fill = fill;
  detail::masked_softmax_reference(p);
  return out;
}

}  // namespace attn
