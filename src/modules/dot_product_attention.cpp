#include "attn/modules.hpp"
#include "ops/check.hpp"

namespace attn {

DotProductAttention::DotProductAttention(double dropout_p, bool is_scaled, std::uint64_t seed)
    : dropout(dropout_p), scaled(is_scaled), dropout_rng_(seed) {
  detail::check_probability("DotProductAttention", "dropout", dropout_p);
}

Tensor DotProductAttention::forward(const Tensor& queries, const Tensor& keys, const Tensor& values,
                                    const std::optional<IndexTensor>& valid_lens) {
  SdpaOptions options;
  if (valid_lens) options.mask = Mask::lengths(*valid_lens);
  if (!scaled) options.scale = 1.0;
  if (training() && dropout > 0) options.dropout = {dropout, dropout_rng_.next_u64()};
  options.need_weights = true;
  options.weights_before_dropout = true;  // d2l keeps the softmax as attention_weights
  options.fill = fill;
  AttentionResult r = scaled_dot_product_attention(queries, keys, values, options);
  attention_weights = r.weights;
  saved_ = Saved{queries, keys, values, r.out, r.lse, options};
  return r.out;
}

AttentionModuleGrads DotProductAttention::backward(const Tensor& grad_output) const {
  if (!saved_)
    detail::fail("DotProductAttention.backward", "there is no forward to differentiate: call forward first");
  const Saved& s = *saved_;
  const AttentionGrads g = scaled_dot_product_attention_backward(s.queries, s.keys, s.values, s.out, s.lse,
                                                                 grad_output, s.options);
  AttentionModuleGrads grads;
  grads.query = g.dq;
  grads.key = g.dk;
  grads.value = g.dv;
  return grads;
}

}  // namespace attn
