// One additive attention call checked and read as one-head 4-D views: shared by
// the forward and the backward, so that both accept exactly the same calls.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "attn/ops.hpp"
#include "kernels/params.hpp"

namespace attn::detail {

struct AdditiveLayout {
  Tensor q, k, v;        // (B, 1, Lq, Dq), (B, 1, Lk, Dk), (B, 1, Lk, Dv)
  Tensor w_q, w_k, w_v;  // contiguous (Hd, Dq), (Hd, Dk), (1, Hd)
  std::int64_t B = 0, Lq = 0, Lk = 0, Dq = 0, Dk = 0, Dv = 0, hidden = 0;
  std::string as_passed;  // the six shapes, for messages
};

// Checks ranks, batch, lengths, the weights' widths and the dropout probability;
// throws attn::Error naming `op` otherwise.
AdditiveLayout additive_layout(std::string_view op, const Tensor& queries, const Tensor& keys,
                               const Tensor& values, const Tensor& w_q, const Tensor& w_k, const Tensor& w_v,
                               const AdditiveOptions& options);

// The queries, keys, weights and sizes into a kernel's params.
inline void set_additive_inputs(AdditiveParams& p, const AdditiveLayout& l) {
  p.query_dim = l.Dq;
  p.key_dim = l.Dk;
  p.hidden = l.hidden;
  p.q = l.q.data();
  p.q_stride = Strides4::of(l.q);
  p.k = l.k.data();
  p.k_stride = Strides4::of(l.k);
  p.w_q = l.w_q.data();
  p.w_k = l.w_k.data();
  p.w_v = l.w_v.data();
}

}  // namespace attn::detail
