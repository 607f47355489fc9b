// What every attention op hands its kernel beside the scores: values, output,
// log-sum-exp, weights, mask, dropout and fill; the same for a backward, which
// reads the forward's output and log-sum-exp and writes dv and the bias
// gradients; and the record of which kernel ran.
#pragma once

#include <string>
#include <string_view>

#include "attn/backward.hpp"
#include "attn/ops.hpp"
#include "kernels/params.hpp"
#include "ops/check.hpp"

namespace attn::detail {

// The sizes and the value/output pointers that a forward and a backward fill alike.
inline void set_attention_shapes(AttentionParams& p, const Tensor& v4, const Tensor& out4) {
  p.batch = out4.size(0);
  p.q_heads = out4.size(1);
  p.queries = out4.size(2);
  p.kv_heads = v4.size(1);
  p.keys = v4.size(2);
  p.value_dim = v4.size(3);
  p.v = v4.data();
  p.v_stride = Strides4::of(v4);
  p.out = out4.data();
  p.out_stride = Strides4::of(out4);
}

// v4 (B, Hkv, Lk, Dv) and out4 (B, Hq, Lq, Dv) are 4-D views; result.lse and
// (when asked for) result.weights are allocated contiguous here. Options is
// SdpaOptions or AdditiveOptions.
template <class Options>
void set_attention_io(AttentionParams& p, const Tensor& v4, const Tensor& out4, const MaskView& mask,
                      const Options& options, AttentionResult& result) {
  const bool need_weights = options.need_weights;
  set_attention_shapes(p, v4, out4);
  result.lse = Tensor::empty({p.batch, p.q_heads, p.queries});
  p.lse = result.lse.data();
  if (need_weights) result.weights = Tensor::empty({p.batch, p.q_heads, p.queries, p.keys});
  p.weights = need_weights ? result.weights.data() : nullptr;
  p.weights_before_dropout = options.weights_before_dropout;
  p.mask = &mask;
  p.dropout = options.dropout;
  p.fill = options.fill;
}

// The forward's side of a backward: v4 (B, Hkv, Lk, Dv), the saved out4
// (B, Hq, Lq, Dv) and lse3 (B, Hq, Lq), contiguous; mask, dropout and fill as the
// forward had them.
template <class Options>
void set_attention_saved(AttentionParams& p, const Tensor& v4, const Tensor& out4, const Tensor& lse3,
                         const MaskView& mask, const Options& options) {
  set_attention_shapes(p, v4, out4);
  p.lse = lse3.data();
  p.mask = &mask;
  p.dropout = options.dropout;
  p.fill = options.fill;
}

// The gradient side of a backward: dout4 (B, Hq, Lq, Dv) read through its strides;
// result.dv allocated as `v_shape`; with need_bias_grad, one zero gradient per bias
// term of `mask` in the term's shape, addressed through its broadcast strides over
// the scores (B, Hq, Lq, Lk') of the keys the terms describe.
inline void set_attention_grads(AttentionGradParams& g, const Tensor& dout4, const Shape& v_shape,
                                const Mask& mask, const MaskView& view, std::int64_t heads,
                                bool need_bias_grad, AttentionGrads& result) {
  g.dout = dout4.data();
  g.dout_stride = Strides4::of(dout4);
  result.dv = Tensor::zeros(v_shape);
  g.dv = result.dv.data();
  if (!need_bias_grad) return;
  const Shape scores = {dout4.size(0), heads, dout4.size(2), view.keys};
  for (const Tensor& term : mask.bias_terms()) {
    Tensor grad = Tensor::zeros(term.shape());
    g.dbias.push_back({grad.data(), Strides4::of(grad.expand(scores)), grad.numel()});
    result.dbias.push_back(grad);
  }
}

// Throws unless a tensor the backward reads (out, lse, dout) has `want`'s shape.
inline void check_saved(std::string_view op, std::string_view name, const Tensor& t, const Shape& want,
                        std::string_view what, const std::string& as_passed) {
  if (t.shape() != want)
    fail(op, std::string(name) + " " + t.shape_string() + " must have " + std::string(what) + " " +
                 shape_str(want) + "; " + as_passed);
}

// Records the reference kernel as the one that ran, and why.
template <class Result>
void ran_reference(Kernel requested, Result& result) {
  result.kernel = Kernel::reference;
  result.kernel_reason = requested == Kernel::reference
                             ? "requested"
                             : "the reference kernel is the only implementation of this op";
}

}  // namespace attn::detail
