// The gradients of the ops: one explicit backward function beside each forward of
// ops.hpp, no autograd. Each takes the forward's inputs, what the forward returned
// (out and lse for attention) and the gradient of the loss with respect to the
// forward's output, and returns fresh gradients, contiguous, in the shapes of the
// forward's inputs.
//
// Attention backward recomputes the softmax from the saved log-sum-exp and never
// keeps an L x L matrix between calls (FlashAttention-2):
//   auto r = attn::scaled_dot_product_attention(q, k, v, options);
//   auto g = attn::scaled_dot_product_attention_backward(q, k, v, r.out, r.lse, dout, options);
//   g.dq; g.dk; g.dv;
// Pass the forward's options unchanged: the mask, scale, fill and dropout (the
// same seed gives the same kept weights) must be the ones the forward ran with.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "attn/ops.hpp"
#include "attn/tensor.hpp"

namespace attn {

// dx of y = masked_softmax(x, valid_lens, fill), from y and dy = dL/dy (both of x's
// shape): dx = y o (dy - rowsum(y o dy)) on the kept entries, 0 where the fill
// replaced x.
Tensor masked_softmax_backward(const Tensor& y, const Tensor& dy,
                               const std::optional<IndexTensor>& valid_lens = std::nullopt,
                               MaskFill fill = MaskFill::neg_inf);

struct BackwardOptions {
  // Return the gradient of each additive bias term of the mask (Mask::bias, a float
  // attn_mask or key_padding_mask): dL/dbias, summed over the axes the bias is
  // broadcast over, so it has the bias's own shape.
  bool need_bias_grad = false;
  // Kernel::automatic runs the fused CPU backward of scaled dot-product attention,
  // except under MaskFill::d2l or need_bias_grad, which run on the reference (the
  // result's kernel_reason says so); Kernel::fused with either throws. The other
  // ops' backward has only the reference kernel.
  Kernel kernel = Kernel::automatic;
};

struct AttentionGrads {
  Tensor dq, dk, dv;  // the shapes of query, key and value (3-D or 4-D as passed)
  // With need_bias_grad: one gradient per bias term of options.mask, in the order of
  // mask.bias_terms(), each in its term's shape; empty otherwise. Entries that a
  // structural or boolean term masks, and -inf entries, get 0.
  std::vector<Tensor> dbias;
  Kernel kernel = Kernel::reference;  // which implementation ran
  std::string kernel_reason;          // why that one
};

// The backward of scaled_dot_product_attention(q, k, v, options): dq, dk, dv (and
// dbias) given out and lse as the forward returned them and dout = dL/dout of out's
// shape. GQA: the gradient of a key/value head sums over the query heads that
// share it. A row with nothing allowed (lse = -inf) gets zero gradients, never NaN.
// options.need_weights, weights_before_dropout and kernel are the forward's and
// are not read; the backward's kernel is `backward.kernel`.
AttentionGrads scaled_dot_product_attention_backward(const Tensor& q, const Tensor& k, const Tensor& v,
                                                     const Tensor& out, const Tensor& lse, const Tensor& dout,
                                                     const SdpaOptions& options = {},
                                                     const BackwardOptions& backward = {});
// The backward of dot_product_attention (scale 1); options.scale must be empty.
AttentionGrads dot_product_attention_backward(const Tensor& q, const Tensor& k, const Tensor& v,
                                              const Tensor& out, const Tensor& lse, const Tensor& dout,
                                              const SdpaOptions& options = {},
                                              const BackwardOptions& backward = {});

// dq, dk, dv are the gradients of queries, keys and values; dw_q, dw_k, dw_v those
// of the three weights, in their shapes.
struct AdditiveGrads : AttentionGrads {
  Tensor dw_q, dw_k, dw_v;
};

// The backward of additive_attention(queries, keys, values, w_q, w_k, w_v, options),
// given its out (B, Lq, Dv) and lse (B, Lq), and dout of out's shape.
AdditiveGrads additive_attention_backward(const Tensor& queries, const Tensor& keys, const Tensor& values,
                                          const Tensor& w_q, const Tensor& w_k, const Tensor& w_v,
                                          const Tensor& out, const Tensor& lse, const Tensor& dout,
                                          const AdditiveOptions& options = {},
                                          const BackwardOptions& backward = {});

struct LinearGrads {
  Tensor dx;       // x's shape
  Tensor dweight;  // (out, in)
  Tensor dbias;    // (out), undefined when the forward had no bias
};

// The backward of y = linear(x, weight, bias): dy of y's shape. `has_bias` says
// whether the forward had a bias (its value is not needed). Kernel::automatic
// runs the products through OpenBLAS sgemm (float accumulation); Kernel::reference
// accumulates in double.
LinearGrads linear_backward(const Tensor& x, const Tensor& weight, const Tensor& dy, bool has_bias,
                            Kernel kernel = Kernel::automatic);

}  // namespace attn
