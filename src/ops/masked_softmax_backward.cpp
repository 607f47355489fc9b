// masked_softmax_backward: the forward's checks of valid_lens, and y against dy.
#include "attn/backward.hpp"
#include "kernels/reference/reference.hpp"
#include "ops/check.hpp"
#include "ops/masked_softmax_rows.hpp"

namespace attn {

Tensor masked_softmax_backward(const Tensor& y, const Tensor& dy,
                               const std::optional<IndexTensor>& valid_lens, MaskFill fill) {
  constexpr std::string_view kOp = "masked_softmax_backward";
  const detail::MaskedSoftmaxRows r = detail::masked_softmax_rows(kOp, "Y", y, valid_lens);
  if (dy.shape() != y.shape())
    detail::fail(kOp,
                 "dY must have Y's shape; " + detail::describe("Y", y) + ", " + detail::describe("dY", dy));
  const Tensor y_rows = y.contiguous(), dy_rows = dy.contiguous();
  Tensor dx = Tensor::empty(y.shape());
  detail::MaskedSoftmaxBackwardParams p;
  detail::set_rows(p, r);
  p.out = y_rows.data();
  p.dy = dy_rows.data();
  p.dx = dx.data();
  p.fill = fill;
  detail::masked_softmax_backward_reference(p);
  return dx;
}

}  // namespace attn
