// scaled_dot_product_attention and dot_product_attention: validation, layout
// and the choice of kernel.
#include "attn/ops.hpp"
#include "kernels/cpu/attention_fused.hpp"
#include "kernels/reference/reference.hpp"
#include "mask_view.hpp"
#include "ops/attention_io.hpp"
#include "ops/check.hpp"
#include "ops/sdpa_layout.hpp"

namespace attn {

std::string to_string(Kernel kernel) {
  switch (kernel) {
    case Kernel::automatic: return "automatic";
    case Kernel::reference: return "reference";
    case Kernel::fused: return "fused";
  }
  return "unknown";
}

namespace {

constexpr std::string_view kOp = "scaled_dot_product_attention";

std::string shapes(const Tensor& q, const Tensor& k, const Tensor& v) {
  return detail::describe("query", q) + ", " + detail::describe("key", k) + ", " +
         detail::describe("value", v);
}

AttentionResult run(const Tensor& q_in, const Tensor& k_in, const Tensor& v_in,
                    const Tensor* out_in, const SdpaOptions& options) {
  const detail::SdpaLayout l = detail::sdpa_layout(kOp, q_in, k_in, v_in, options);
  const std::string& as_passed = l.as_passed;
  const Shape& out_shape = l.out_shape;

  Tensor out;
  if (out_in != nullptr) {
    if (out_in->shape() != out_shape)
      detail::fail(kOp, "out " + out_in->shape_string() + " must have the output's shape " +
                            shape_str(out_shape) + "; " + as_passed);
    if (detail::broadcasts(*out_in))
      detail::fail(kOp, "out " + out_in->shape_string() + " with strides " + shape_str(out_in->strides()) +
                            " broadcasts (a stride 0): heads would overwrite each other; " + as_passed);
    if (detail::overlaps(*out_in, q_in) || detail::overlaps(*out_in, k_in) || detail::overlaps(*out_in, v_in))
      detail::fail(kOp, "out " + out_in->shape_string() +
                            " overlaps the memory of query, key or value, which it would overwrite "
                            "while they are read; " + as_passed);
    out = *out_in;
  } else {
    out = Tensor::empty(out_shape);
  }

  const detail::MaskView mask = detail::resolve_mask(kOp, options.mask, l.B, l.Hq, l.Lq, l.Lk);

  AttentionResult result;
  const Tensor out4 = l.as_heads(out);
  detail::SdpaParams p;
  detail::set_attention_io(p, l.v, out4, mask, options, result);
  detail::set_sdpa_inputs(p, l);

  // The fused kernel serves Kernel::automatic and Kernel::fused, except for
  // d2l's fill: its -1e6 makes a fully masked row uniform over every key, which a
  // kernel that skips masked tiles cannot give, so that stays on the reference.
  if (options.kernel == Kernel::reference) {
    detail::sdpa_reference(p);
    detail::ran_reference(options.kernel, result);
  } else if (options.fill == MaskFill::d2l) {
    if (options.kernel == Kernel::fused)
      detail::fail(kOp, "Kernel::fused does not implement MaskFill::d2l; use Kernel::automatic "
                        "or Kernel::reference; " + as_passed);
    detail::sdpa_reference(p);
    result.kernel = Kernel::reference;
    result.kernel_reason = "automatic: MaskFill::d2l runs on the reference kernel";
  } else {
    detail::sdpa_fused(p);
    result.kernel = Kernel::fused;
    result.kernel_reason = std::string(options.kernel == Kernel::fused ? "requested" : "automatic") +
                           ": fused CPU kernel (" + detail::fused_describe(p) + ")";
  }

  result.out = out;
  if (l.rank == 3) {
    result.lse = result.lse.select(1, 0);
    if (options.need_weights) result.weights = result.weights.select(1, 0);
  }
  return result;
}

}  // namespace

AttentionResult scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                                             const SdpaOptions& options) {
  return run(q, k, v, nullptr, options);
}

AttentionResult scaled_dot_product_attention_into(const Tensor& q, const Tensor& k,
                                                  const Tensor& v, const Tensor& out,
                                                  const SdpaOptions& options) {
  return run(q, k, v, &out, options);
}

AttentionResult dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                                      const SdpaOptions& options) {
  if (options.scale)
    detail::fail("dot_product_attention",
                 "is unscaled (scale 1), got scale " + std::to_string(*options.scale) +
                     "; use scaled_dot_product_attention for a scale; " + shapes(q, k, v));
  SdpaOptions unscaled = options;
  unscaled.scale = 1.0;
  return scaled_dot_product_attention(q, k, v, unscaled);
}

}  // namespace attn
