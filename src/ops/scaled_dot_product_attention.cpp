// scaled_dot_product_attention and dot_product_attention: validation, layout
// and the choice of kernel.
#include <cmath>

#include "attn/ops.hpp"
#include "kernels/cpu/attention_fused.hpp"
#include "kernels/reference/reference.hpp"
#include "mask_view.hpp"
#include "ops/attention_io.hpp"
#include "ops/check.hpp"

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

// Checks q (B, Hq, Lq, Dk), k (B, Hkv, Lk, Dk), v (B, Hkv, Lk, Dv) against each
// other; messages show `as_passed`, the shapes the caller gave.
void check_qkv(const Tensor& q, const Tensor& k, const Tensor& v, const std::string& as_passed) {
  const auto mismatch = [&](const std::string& what) { detail::fail(kOp, what + "; " + as_passed); };
  if (q.size(0) != k.size(0) || q.size(0) != v.size(0))
    mismatch("query, key and value must have the same batch size");
  if (k.size(1) != v.size(1)) mismatch("key and value must have the same number of heads");
  if (k.size(1) == 0 ? q.size(1) != 0 : q.size(1) % k.size(1) != 0)
    mismatch("query heads (" + std::to_string(q.size(1)) +
             ") must be a multiple of key/value heads (" + std::to_string(k.size(1)) + ")");
  if (k.size(2) != v.size(2)) mismatch("key and value must have the same length");
  if (q.size(3) != k.size(3)) mismatch("query and key must have the same head dim");
}

AttentionResult run(const Tensor& q_in, const Tensor& k_in, const Tensor& v_in,
                    const Tensor* out_in, const SdpaOptions& options) {
  const std::int64_t rank = q_in.rank();
  if ((rank != 3 && rank != 4) || k_in.rank() != rank || v_in.rank() != rank)
    detail::fail(kOp, "query, key and value must all be 4-D (B, H, L, D) or all 3-D (B, L, D); " +
                          shapes(q_in, k_in, v_in));
  // 3-D inputs are one head.
  const auto as_heads = [rank](const Tensor& t) { return rank == 3 ? t.unsqueeze(1) : t; };
  const Tensor q = as_heads(q_in), k = as_heads(k_in), v = as_heads(v_in);
  const std::string as_passed = shapes(q_in, k_in, v_in);
  check_qkv(q, k, v, as_passed);

  const std::int64_t B = q.size(0), Hq = q.size(1), Lq = q.size(2), Dk = q.size(3);
  const std::int64_t Lk = k.size(2), Dv = v.size(3);
  const Shape out_shape = rank == 3 ? Shape{B, Lq, Dv} : Shape{B, Hq, Lq, Dv};

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

  const double scale = options.scale.value_or(Dk > 0 ? 1.0 / std::sqrt(static_cast<double>(Dk)) : 1.0);
  if (!std::isfinite(scale))
    detail::fail(kOp, "scale must be finite, got " + std::to_string(scale) + "; " + as_passed);
  detail::check_probability(kOp, "dropout p", options.dropout.p, as_passed);
  const detail::MaskView mask = detail::resolve_mask(kOp, options.mask, B, Hq, Lq, Lk);

  AttentionResult result;
  const Tensor out4 = as_heads(out);
  detail::SdpaParams p;
  detail::set_attention_io(p, v, out4, mask, options, result);
  p.key_dim = Dk;
  p.q = q.data();
  p.q_stride = detail::Strides4::of(q);
  p.k = k.data();
  p.k_stride = detail::Strides4::of(k);
  p.scale = scale;

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
  if (rank == 3) {
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
