// What every attention op hands its kernel beside the scores: values, output,
// log-sum-exp, weights, mask, dropout and fill; and the record of which kernel ran.
#pragma once

#include "attn/ops.hpp"
#include "kernels/params.hpp"

namespace attn::detail {

// v4 (B, Hkv, Lk, Dv) and out4 (B, Hq, Lq, Dv) are 4-D views; result.lse and
// (when asked for) result.weights are allocated contiguous here. Options is
// SdpaOptions or AdditiveOptions.
template <class Options>
void set_attention_io(AttentionParams& p, const Tensor& v4, const Tensor& out4, const MaskView& mask,
                      const Options& options, AttentionResult& result) {
  const bool need_weights = options.need_weights;
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
  result.lse = Tensor::empty({p.batch, p.q_heads, p.queries});
  p.lse = result.lse.data();
  if (need_weights) result.weights = Tensor::empty({p.batch, p.q_heads, p.queries, p.keys});
  p.weights = need_weights ? result.weights.data() : nullptr;
  p.weights_before_dropout = options.weights_before_dropout;
  p.mask = &mask;
  p.dropout = options.dropout;
  p.fill = options.fill;
}

// Records the reference kernel as the one that ran, and why.
inline void ran_reference(Kernel requested, AttentionResult& result) {
  result.kernel = Kernel::reference;
  result.kernel_reason = requested == Kernel::reference
                             ? "requested"
                             : "the reference kernel is the only implementation of this op";
}

}  // namespace attn::detail
