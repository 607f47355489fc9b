// additive_attention_backward: the forward's checks, those of the saved tensors,
// and the choice of kernel.
#include "attn/backward.hpp"
#include "kernels/reference/reference.hpp"
#include "mask_view.hpp"
#include "ops/additive_layout.hpp"
#include "ops/attention_io.hpp"
#include "ops/check.hpp"

namespace attn {

namespace {
constexpr std::string_view kOp = "additive_attention_backward";
}

AdditiveGrads additive_attention_backward(const Tensor& queries, const Tensor& keys, const Tensor& values,
                                          const Tensor& w_q, const Tensor& w_k, const Tensor& w_v,
                                          const Tensor& out, const Tensor& lse, const Tensor& dout,
                                          const AdditiveOptions& options, const BackwardOptions& backward) {
  AdditiveOptions forward = options;
  forward.kernel = backward.kernel;  // the forward's kernel is not this call's
  const detail::AdditiveLayout l =
      detail::additive_layout(kOp, queries, keys, values, w_q, w_k, w_v, forward);
  const Shape out_shape = {l.B, l.Lq, l.Dv};
  detail::check_saved(kOp, "out", out, out_shape, "the forward output's shape", l.as_passed);
  detail::check_saved(kOp, "lse", lse, {l.B, l.Lq}, "the forward lse's shape", l.as_passed);
  detail::check_saved(kOp, "dout", dout, out_shape, "the output's shape", l.as_passed);
  const detail::MaskView mask = detail::resolve_mask(kOp, options.mask, l.B, 1, l.Lq, l.Lk);

  AdditiveGrads result;
  const Tensor lse3 = lse.unsqueeze(1).contiguous();  // (B, 1, Lq)
  detail::AdditiveBackwardParams p;
  detail::set_attention_saved(p, l.v, out.unsqueeze(1), lse3, mask, options);
  detail::set_additive_inputs(p, l);
  detail::set_attention_grads(p.grad, dout.unsqueeze(1), l.v.shape(), options.mask, mask, 1,
                              backward.need_bias_grad, result);
  result.dv = result.dv.select(1, 0);
  result.dq = Tensor::zeros(queries.shape());
  result.dk = Tensor::zeros(keys.shape());
  result.dw_q = Tensor::zeros(w_q.shape());
  result.dw_k = Tensor::zeros(w_k.shape());
  result.dw_v = Tensor::zeros(w_v.shape());
  p.dq = result.dq.data();
  p.dk = result.dk.data();
  p.dw_q = result.dw_q.data();
  p.dw_k = result.dw_k.data();
  p.dw_v = result.dw_v.data();
  detail::additive_attention_backward_reference(p);
  detail::ran_reference(backward.kernel, result);
  return result;
}

}  // namespace attn
