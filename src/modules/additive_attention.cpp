#include "attn/modules.hpp"
#include "ops/check.hpp"

namespace attn {

AdditiveAttention::AdditiveAttention(std::int64_t key_size, std::int64_t query_size,
                                     std::int64_t num_hiddens, double dropout_p, Rng& rng)
    : W_q(query_size, num_hiddens, false, rng),
      W_k(key_size, num_hiddens, false, rng),
      w_v(num_hiddens, 1, false, rng),
      dropout(dropout_p),
      dropout_rng_(rng.next_u64()) {
  detail::check_probability("AdditiveAttention", "dropout", dropout_p);
}

Tensor AdditiveAttention::forward(const Tensor& queries, const Tensor& keys, const Tensor& values,
                                  const std::optional<IndexTensor>& valid_lens) {
  AdditiveOptions options;
  if (valid_lens) options.mask = Mask::lengths(*valid_lens);
  if (training() && dropout > 0) options.dropout = {dropout, dropout_rng_.next_u64()};
  options.need_weights = true;
  options.weights_before_dropout = true;  // d2l keeps the softmax as attention_weights
  options.fill = fill;
  AttentionResult r = additive_attention(queries, keys, values, W_q.weight, W_k.weight, w_v.weight, options);
  attention_weights = r.weights;
  saved_ = Saved{queries, keys, values, r.out, r.lse, options};
  return r.out;
}

AttentionModuleGrads AdditiveAttention::backward(const Tensor& grad_output) const {
  if (!saved_)
    detail::fail("AdditiveAttention.backward", "there is no forward to differentiate: call forward first");
  const Saved& s = *saved_;
  const AdditiveGrads g = additive_attention_backward(s.queries, s.keys, s.values, W_q.weight, W_k.weight,
                                                      w_v.weight, s.out, s.lse, grad_output, s.options);
  AttentionModuleGrads grads;
  grads.query = g.dq;
  grads.key = g.dk;
  grads.value = g.dv;
  // The order of named_parameters().
  grads.params = {{"W_q.weight", g.dw_q}, {"W_k.weight", g.dw_k}, {"w_v.weight", g.dw_v}};
  return grads;
}

NamedParameters AdditiveAttention::named_parameters() const {
  NamedParameters params = W_q.named_parameters("W_q.");
  for (auto& p : W_k.named_parameters("W_k.")) params.push_back(p);
  for (auto& p : w_v.named_parameters("w_v.")) params.push_back(p);
  return params;
}

}  // namespace attn
