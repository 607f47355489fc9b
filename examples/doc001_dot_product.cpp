// Document 001: dot-product attention without scaling, keys = values = x2:
// softmax(bmm(x1, x2^T), dim=-1), then bmm with x2.
#include <iostream>

#include "attn/attn.hpp"

int main() {
  attn::Rng rng(0);
  const attn::Tensor x1 = attn::Tensor::randn({2, 3, 4}, rng);  // (batch, seq_len1, feature_dim)
  const attn::Tensor x2 = attn::Tensor::randn({2, 5, 4}, rng);  // (batch, seq_len2, feature_dim)

  const attn::AttentionResult result =
      attn::dot_product_attention(x1, x2, x2, {.need_weights = true});

  std::cout << "attention weights " << result.weights.shape_string() << ":\n"
            << attn::to_string(result.weights) << '\n'
            << "attention output " << result.out.shape_string() << ":\n"
            << attn::to_string(result.out) << '\n';
}
