// additive_attention: validation and layout for the Bahdanau scoring function.
#include "attn/ops.hpp"
#include "kernels/reference/reference.hpp"
#include "mask_view.hpp"
#include "ops/additive_layout.hpp"
#include "ops/attention_io.hpp"

namespace attn {

namespace {
constexpr std::string_view kOp = "additive_attention";
}

AttentionResult additive_attention(const Tensor& queries, const Tensor& keys, const Tensor& values,
                                   const Tensor& w_q, const Tensor& w_k, const Tensor& w_v,
                                   const AdditiveOptions& options) {
  const detail::AdditiveLayout l =
      detail::additive_layout(kOp, queries, keys, values, w_q, w_k, w_v, options);
  const detail::MaskView mask = detail::resolve_mask(kOp, options.mask, l.B, 1, l.Lq, l.Lk);

  AttentionResult result;
  result.out = Tensor::empty({l.B, l.Lq, l.Dv});
  detail::AdditiveParams p;
  detail::set_attention_io(p, l.v, result.out.unsqueeze(1), mask, options, result);
  detail::set_additive_inputs(p, l);
  detail::additive_attention_reference(p);
  detail::ran_reference(options.kernel, result);
  // One head: drop the head dim of lse and weights.
  result.lse = result.lse.select(1, 0);
  if (options.need_weights) result.weights = result.weights.select(1, 0);
  return result;
}

}  // namespace attn
