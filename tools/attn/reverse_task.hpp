// The reverse task of `attn train`: a sequence of tokens in, the same sequence
// reversed out. Output position i must read input position L - 1 - i, so the
// attention that solves it is known: the anti-diagonal.
//
// The model is one cross-attention layer and a linear read-out:
//   keys = values = token_embedding[x] + input_position      (B, L, E)
//   queries       = output_position                          (L, E), per batch row
//   y             = MultiHeadAttention(queries, keys, values) (B, L, E)
//   logits        = Linear(y)                                 (B, L, V)
// Only the queries know where they are in the output, and only the keys where
// they are in the input: the attention has to learn the mirror.
#pragma once

#include <cstdint>

#include "attn/modules.hpp"
#include "attn/rng.hpp"
#include "attn/tensor.hpp"

namespace attn::tools {

struct ReverseTaskSizes {
  std::int64_t length = 16;  // L: tokens per sequence
  std::int64_t vocab = 16;   // V
  std::int64_t width = 32;   // E
  std::int64_t heads = 1;
};

struct ReverseBatch {
  IndexTensor tokens;   // (B, L), uniform over the vocabulary
  IndexTensor targets;  // (B, L): tokens reversed along L
};
ReverseBatch reverse_batch(std::int64_t batch, const ReverseTaskSizes& sizes, Rng& rng);

class ReverseModel {
 public:
  ReverseModel(const ReverseTaskSizes& sizes, std::uint64_t seed);

  struct Output {
    Tensor logits;   // (B, L, V)
    Tensor weights;  // (B, L, L): attention of output positions over input positions
  };
  Output forward(const IndexTensor& tokens);
  // The gradients of the last forward's parameters, given dL/dlogits, under the
  // names of named_parameters().
  NamedParameters backward(const Tensor& dlogits);
  NamedParameters named_parameters() const;

 private:
  ReverseTaskSizes sizes_;
  Tensor token_embedding_;  // (V, E), N(0, 1) as nn.Embedding
  Tensor input_position_;   // (L, E)
  Tensor output_position_;  // (L, E)
  MultiHeadAttention attention_;
  Linear readout_;          // E -> V
  IndexTensor saved_tokens_;
};

struct CrossEntropy {
  double loss = 0;      // mean over the B L tokens
  double accuracy = 0;  // fraction of tokens whose largest logit is the target
  Tensor dlogits;       // d loss / d logits, (B, L, V)
};
// nn.functional.cross_entropy over the last axis, mean reduction.
CrossEntropy cross_entropy(const Tensor& logits, const IndexTensor& targets);

// The fraction of (b, i) rows of weights (B, L, L) whose largest weight is on key
// L - 1 - i.
double mirrored_fraction(const Tensor& weights);

}  // namespace attn::tools
