// Document 004: attention scoring functions, d2l.ai style: masked_softmax with 1-D
// and 2-D valid_lens (masked scores set to -1e6), additive attention and scaled
// dot-product attention on ten identical keys.
#include <iostream>

#include "attn/attn.hpp"

int main() {
  attn::Rng rng(0);

  const attn::Tensor scores = attn::Tensor::rand({2, 2, 4}, rng);
  std::cout << "masked_softmax(X, [2, 3]):\n"
            << attn::to_string(attn::masked_softmax(scores, attn::IndexTensor::from({2}, {2, 3}),
                                                    attn::MaskFill::d2l))
            << "\nmasked_softmax(X, [[1, 3], [2, 4]]):\n"
            << attn::to_string(attn::masked_softmax(
                   scores, attn::IndexTensor::from({2, 2}, {1, 3, 2, 4}), attn::MaskFill::d2l))
            << '\n';

  const attn::Tensor keys = attn::Tensor::full({2, 10, 2}, 1.0f);
  const attn::Tensor values = attn::Tensor::arange(40).reshape({1, 10, 4}).expand({2, 10, 4});
  const attn::IndexTensor valid_lens = attn::IndexTensor::from({2}, {2, 6});

  attn::AdditiveAttention additive(/*key_size=*/2, /*query_size=*/20, /*num_hiddens=*/8,
                                   /*dropout=*/0.1, rng);
  additive.eval();
  const attn::Tensor queries = attn::Tensor::randn({2, 1, 20}, rng);
  std::cout << "additive attention:\n"
            << attn::to_string(additive.forward(queries, keys, values, valid_lens)) << '\n'
            << attn::to_string(additive.attention_weights) << '\n';

  attn::DotProductAttention dot(/*dropout=*/0.5);
  dot.eval();
  const attn::Tensor small_queries = attn::Tensor::randn({2, 1, 2}, rng);
  std::cout << "scaled dot-product attention:\n"
            << attn::to_string(dot.forward(small_queries, keys, values, valid_lens)) << '\n'
            << attn::to_string(dot.attention_weights) << '\n';
}
