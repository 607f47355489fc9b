// scaled_dot_product_attention_backward and dot_product_attention_backward:
// the forward's checks, those of the saved tensors, and the choice of kernel.
#include "attn/backward.hpp"
#include "kernels/cpu/attention_fused_backward.hpp"
#include "kernels/reference/reference.hpp"
#include "mask_view.hpp"
#include "ops/attention_io.hpp"
#include "ops/check.hpp"
#include "ops/sdpa_layout.hpp"

namespace attn {

namespace {
constexpr std::string_view kOp = "scaled_dot_product_attention_backward";
}

AttentionGrads scaled_dot_product_attention_backward(const Tensor& q, const Tensor& k, const Tensor& v,
                                                     const Tensor& out, const Tensor& lse, const Tensor& dout,
                                                     const SdpaOptions& options,
                                                     const BackwardOptions& backward) {
  const detail::SdpaLayout l = detail::sdpa_layout(kOp, q, k, v, options);
  detail::check_saved(kOp, "out", out, l.out_shape, "the forward output's shape", l.as_passed);
  detail::check_saved(kOp, "lse", lse, l.lse_shape, "the forward lse's shape", l.as_passed);
  detail::check_saved(kOp, "dout", dout, l.out_shape, "the output's shape", l.as_passed);
  // The fused backward serves Kernel::automatic and Kernel::fused, except for d2l's
  // fill (as in the forward: its fully masked rows see every key) and for bias
  // gradients (a bias broadcast over batches or heads would need the tasks of
  // several heads to add into one element: the order, and the bits, would depend
  // on the threads).
  std::string reference_only;
  if (options.fill == MaskFill::d2l) reference_only = "MaskFill::d2l";
  if (backward.need_bias_grad) reference_only = "need_bias_grad (the gradient of an additive mask)";
  if (backward.kernel == Kernel::fused && !reference_only.empty())
    detail::fail(kOp, "Kernel::fused does not implement " + reference_only +
                          "; use Kernel::automatic or Kernel::reference; " + l.as_passed);
  const detail::MaskView mask = detail::resolve_mask(kOp, options.mask, l.B, l.Hq, l.Lq, l.Lk);

  AttentionGrads result;
  const Tensor lse3 = (l.rank == 3 ? lse.unsqueeze(1) : lse).contiguous();  // (B, Hq, Lq)
  detail::SdpaBackwardParams p;
  detail::set_attention_saved(p, l.v, l.as_heads(out), lse3, mask, options);
  detail::set_sdpa_inputs(p, l);
  detail::set_attention_grads(p.grad, l.as_heads(dout), l.v.shape(), options.mask, mask, l.Hq,
                              backward.need_bias_grad, result);
  result.dq = Tensor::zeros(l.q.shape());
  result.dk = Tensor::zeros(l.k.shape());
  p.dq = result.dq.data();
  p.dk = result.dk.data();
  if (backward.kernel == Kernel::reference) {
    detail::sdpa_backward_reference(p);
    detail::ran_reference(backward.kernel, result);
  } else if (!reference_only.empty()) {
    detail::sdpa_backward_reference(p);
    result.kernel = Kernel::reference;
    result.kernel_reason = "automatic: " + reference_only + " runs on the reference kernel";
  } else {
    detail::sdpa_backward_fused(p);
    result.kernel = Kernel::fused;
    result.kernel_reason = std::string(backward.kernel == Kernel::fused ? "requested" : "automatic") +
                           ": fused CPU backward (" + detail::fused_backward_describe(p) + ")";
  }

  if (l.rank == 3) {
    result.dq = result.dq.select(1, 0);
    result.dk = result.dk.select(1, 0);
    result.dv = result.dv.select(1, 0);
  }
  return result;
}

AttentionGrads dot_product_attention_backward(const Tensor& q, const Tensor& k, const Tensor& v,
                                              const Tensor& out, const Tensor& lse, const Tensor& dout,
                                              const SdpaOptions& options, const BackwardOptions& backward) {
  if (options.scale)
    detail::fail("dot_product_attention_backward",
                 "is unscaled (scale 1), got scale " + std::to_string(*options.scale) +
                     "; use scaled_dot_product_attention_backward for a scale; " +
                     detail::describe("query", q) + ", " + detail::describe("key", k) + ", " +
                     detail::describe("value", v));
  SdpaOptions unscaled = options;
  unscaled.scale = 1.0;
  return scaled_dot_product_attention_backward(q, k, v, out, lse, dout, unscaled, backward);
}

}  // namespace attn
