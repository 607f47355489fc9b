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
  return r.out;
}

NamedParameters AdditiveAttention::named_parameters() const {
  NamedParameters params = W_q.named_parameters("W_q.");
  for (auto& p : W_k.named_parameters("W_k.")) params.push_back(p);
  for (auto& p : w_v.named_parameters("w_v.")) params.push_back(p);
  return params;
}

}  // namespace attn
