// Document 000: d2l.ai's MultiHeadAttention(num_hiddens=100, num_heads=5, bias=False)
// on queries (2, 4, 100) and keys = values (2, 6, 100), keeping the first
// valid_lens = [3, 2] keys. `attn demo` prints every stage in between.
#include <iostream>

#include "attn/attn.hpp"

int main() {
  attn::Rng rng(0);
  const attn::Tensor X = attn::Tensor::randn({2, 4, 100}, rng);  // (B, queries, num_hiddens)
  const attn::Tensor Y = attn::Tensor::randn({2, 6, 100}, rng);  // (B, kv pairs, num_hiddens)

  attn::MultiHeadAttention attention(
      {.embed_dim = 100, .num_heads = 5, .dropout = 0.5, .bias = false, .batch_first = true});
  attention.eval();
  const attn::MultiHeadResult result =
      attention.forward(X, Y, Y,
                        {.average_attn_weights = false,
                         .valid_lens = attn::IndexTensor::from({2}, {3, 2}),
                         .fill = attn::MaskFill::d2l});

  // transpose_qkv without a copy: (B, L, 100) -> (B, L, 5, 20) -> (B, 5, L, 20).
  const attn::Tensor heads = X.reshape({2, 4, 5, 20}).permute({0, 2, 1, 3});
  std::cout << "heads of X       " << heads.shape_string() << " strides "
            << attn::shape_str(heads.strides()) << '\n'
            << "output           " << result.output.shape_string() << '\n'
            << "weights per head " << result.weights.shape_string() << '\n'
            << "batch 1, head 0 (2 keys kept):\n"
            << attn::to_string(result.weights.select(0, 1).select(0, 0)) << '\n';
}
