// Document 003: self-attention by hand, twice.
//  1. numpy with column vectors: x (d, n), q = W_q x, A = K^T Q / sqrt(d), softmax
//     down each column, output = V A_hat (d, n). attn reads each (d, n) matrix as
//     (1, n, d) rows through transposed strides, without copying.
//  2. Self_Attention(input_dim=2, dim_k=4, dim_v=5) on X (4, 3, 2), computed as
//     softmax(Q K^T / sqrt(dim_k)) V (the document scales after the softmax, a bug).
#include <iostream>

#include "attn/attn.hpp"

int main() {
  attn::Rng rng(0);

  constexpr std::int64_t d = 256, n = 32;
  const attn::Tensor x = attn::Tensor::randn({d, n}, rng);
  const attn::Tensor w_q = attn::Tensor::randn({d, d}, rng);
  const attn::Tensor w_k = attn::Tensor::randn({d, d}, rng);
  const attn::Tensor w_v = attn::Tensor::randn({d, d}, rng);
  // linear(a, b) = a b^T, so linear(w, x^T) = w @ x, a (d, n) column matrix.
  const attn::Tensor q = attn::linear(w_q, x.transpose(0, 1));
  const attn::Tensor k = attn::linear(w_k, x.transpose(0, 1));
  const attn::Tensor v = attn::linear(w_v, x.transpose(0, 1));
  const auto rows = [](const attn::Tensor& columns) {
    return columns.transpose(0, 1).unsqueeze(0);
  };
  const attn::Tensor output = attn::Tensor::empty({d, n});
  attn::scaled_dot_product_attention_into(rows(q), rows(k), rows(v), rows(output));
  std::cout << "numpy example: output.shape = " << output.shape_string() << '\n';

  const attn::Tensor X = attn::Tensor::randn({4, 3, 2}, rng);
  attn::MultiHeadAttention self_attention({.embed_dim = 2,  // input_dim
                                           .num_heads = 1,
                                           .bias = true,
                                           .batch_first = true,
                                           .qk_proj_dim = 4,  // dim_k
                                           .v_proj_dim = 5,   // dim_v
                                           .out_proj = false});
  const attn::MultiHeadResult res = self_attention.forward(X, X, X);
  std::cout << "Self_Attention(2, 4, 5)(X): " << res.output.shape_string() << '\n'
            << attn::to_string(res.output) << '\n';
}
