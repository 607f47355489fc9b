// The attention ops: free functions over tensor views.
//
// Layouts follow PyTorch. Attention takes (B, H, L, D) or, without a head dim,
// (B, L, D). Any strides are accepted, so a (B, L, H*D) projection is read as
// heads through `reshape` + `permute` without a copy.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "attn/mask.hpp"
#include "attn/tensor.hpp"

namespace attn {

// What a masked score becomes before the softmax.
enum class MaskFill {
  neg_inf,  // -inf: masked keys get weight 0; a row with nothing allowed is all zeros
  d2l,      // d2l's sequence_mask(value=-1e6): replaced by -1e6, so a row with nothing
            // allowed becomes uniform, as in the documents
};
// The fill applies to keys that a structural or boolean term masks. An additive
// bias is added as it is under either fill, so a -inf bias entry always blocks.

// Dropout on the attention weights, as nn.Dropout in training mode: each weight is
// kept with probability 1 - p and scaled by 1 / (1 - p). The kept set is a pure
// function of (seed, b, h, i, j), so it is the same for any kernel or thread count.
struct Dropout {
  double p = 0.0;
  std::uint64_t seed = 0;
};

// Which implementation computes an op.
enum class Kernel {
  automatic,  // the best available for the inputs
  reference,  // plain loops in double: the oracle
  fused,      // the fused CPU kernel: tiled, online softmax, scores never stored
};
std::string to_string(Kernel kernel);

// softmax over the last axis of x, keeping the first valid_lens keys of each row.
// x: (..., C). valid_lens: (x.size(0)) per leading index, or x's shape without its
// last dim, one length per row (d2l's 2-D valid_lens for a 3-D x).
Tensor masked_softmax(const Tensor& x, const std::optional<IndexTensor>& valid_lens = std::nullopt,
                      MaskFill fill = MaskFill::neg_inf);

struct SdpaOptions {
  Mask mask{};
  std::optional<double> scale{};  // default 1 / sqrt(Dk)
  Dropout dropout{};
  bool need_weights = false;
  // Return the softmax before dropout (d2l's attention_weights) instead of the
  // weights applied to the values (nn.MultiheadAttention's).
  bool weights_before_dropout = false;
  MaskFill fill = MaskFill::neg_inf;
  Kernel kernel = Kernel::automatic;
};

struct AttentionResult {
  Tensor out;      // (B, Hq, Lq, Dv), or (B, Lq, Dv) for 3-D inputs
  Tensor lse;      // (B, Hq, Lq), or (B, Lq): natural-log sum of exp of the scaled,
                   // masked scores per row (before dropout); -inf for an empty row
  Tensor weights;  // (B, Hq, Lq, Lk) or (B, Lq, Lk), when asked for: after dropout
                   // unless weights_before_dropout
  Kernel kernel = Kernel::reference;  // which implementation ran
  std::string kernel_reason;          // why that one
};

// softmax(q k^T * scale + bias, masked) v.
// q: (B, Hq, Lq, Dk), k: (B, Hkv, Lk, Dk), v: (B, Hkv, Lk, Dv), with Hq a multiple of
// Hkv (grouped-query attention: query head h reads key/value head h / (Hq / Hkv)).
// 3-D inputs (B, L, D) are one head.
AttentionResult scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                                             const SdpaOptions& options = {});
// The same, writing the output into `out`, a view of shape (B, Hq, Lq, Dv) (or
// (B, Lq, Dv)) with any strides: e.g. a (B, L, H*Dv) buffer read as heads, so
// that the heads are concatenated without a copy. result.out is `out`. `out`
// must not overlap query, key or value, nor broadcast (stride 0).
AttentionResult scaled_dot_product_attention_into(const Tensor& q, const Tensor& k,
                                                  const Tensor& v, const Tensor& out,
                                                  const SdpaOptions& options = {});
// Unscaled dot-product attention, softmax(q k^T) v (document 001): scaled dot-product
// attention with scale 1. options.scale must be empty.
AttentionResult dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                                      const SdpaOptions& options = {});

struct AdditiveOptions {
  Mask mask{};  // over (B, 1, Lq, Lk): typically Mask::lengths(valid_lens)
  Dropout dropout{};
  bool need_weights = false;
  bool weights_before_dropout = false;  // as in SdpaOptions
  MaskFill fill = MaskFill::neg_inf;
  Kernel kernel = Kernel::automatic;
};

// Additive (Bahdanau) attention: score(q, k) = w_v^T tanh(W_q q + W_k k).
// queries (B, Lq, Dq), keys (B, Lk, Dk), values (B, Lk, Dv);
// w_q (Hd, Dq), w_k (Hd, Dk), w_v (1, Hd): nn.Linear weight layouts, no biases.
AttentionResult additive_attention(const Tensor& queries, const Tensor& keys, const Tensor& values,
                                   const Tensor& w_q, const Tensor& w_k, const Tensor& w_v,
                                   const AdditiveOptions& options = {});

// y = x W^T + b, as nn.Linear. x (..., in), weight (out, in), bias (out) or undefined.
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = {},
              Kernel kernel = Kernel::automatic);

}  // namespace attn
