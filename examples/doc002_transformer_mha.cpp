// Document 002: the Transformer's MultiHeadAttention(d_model, num_heads) with biased
// wq, wk, wv and dense, and masks added as mask * -1e9 (1 = blocked): encoder
// self-attention with a padding mask, decoder self-attention with a look-ahead
// mask, and encoder-decoder attention.
#include <iostream>

#include "attn/attn.hpp"

int main() {
  constexpr std::int64_t d_model = 32, num_heads = 4;
  attn::Rng rng(0);
  const attn::Tensor source = attn::Tensor::randn({2, 6, d_model}, rng);
  const attn::Tensor target = attn::Tensor::randn({2, 5, d_model}, rng);

  // padding * -1e9: the second source sentence has 4 tokens.
  const attn::Tensor padding = attn::Tensor::zeros({2, 6});
  padding(1, 4) = padding(1, 5) = -1e9f;
  // look_ahead * -1e9: query i may not see keys j > i.
  const attn::Tensor look_ahead = attn::Tensor::zeros({5, 5});
  for (int i = 0; i < 5; ++i)
    for (int j = i + 1; j < 5; ++j) look_ahead(i, j) = -1e9f;

  // Three layers, each with its own parameters (seeded 1, 2, 3).
  const auto layer = [](std::uint64_t seed) {
    return attn::MultiHeadAttention({.embed_dim = d_model,
                                     .num_heads = num_heads,
                                     .bias = true,
                                     .batch_first = true,
                                     .seed = seed});
  };
  attn::MultiHeadAttention encoder_attention = layer(1), decoder_attention = layer(2),
                           cross_attention = layer(3);

  const attn::MultiHeadResult encoded = encoder_attention.forward(
      source, source, source, {.key_padding_mask = padding, .average_attn_weights = false});
  const attn::MultiHeadResult decoded = decoder_attention.forward(
      target, target, target, {.attn_mask = look_ahead, .average_attn_weights = false});
  const attn::MultiHeadResult crossed =
      cross_attention.forward(decoded.output, encoded.output, encoded.output,
                              {.key_padding_mask = padding, .average_attn_weights = false});

  std::cout << "encoder self-attention  output " << encoded.output.shape_string() << ", weights "
            << encoded.weights.shape_string() << '\n'
            << "decoder self-attention  output " << decoded.output.shape_string() << ", weights "
            << decoded.weights.shape_string() << '\n'
            << "encoder-decoder         output " << crossed.output.shape_string() << ", weights "
            << crossed.weights.shape_string() << '\n'
            << "decoder weights, batch 0, head 0:\n"
            << attn::to_string(decoded.weights.select(0, 0).select(0, 0)) << '\n';
}
