// One scaled dot-product attention call checked and read as 4-D views: shared by
// the forward and the backward, so that both accept exactly the same calls and
// word their errors alike.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "attn/ops.hpp"
#include "kernels/params.hpp"

namespace attn::detail {

struct SdpaLayout {
  Tensor q, k, v;         // (B, Hq, Lq, Dk), (B, Hkv, Lk, Dk), (B, Hkv, Lk, Dv)
  std::int64_t rank = 4;  // as passed: 3-D inputs are one head
  std::int64_t B = 0, Hq = 0, Hkv = 0, Lq = 0, Lk = 0, Dk = 0, Dv = 0;
  double scale = 1.0;     // options.scale, or 1 / sqrt(Dk)
  Shape out_shape;        // (B, Hq, Lq, Dv), or (B, Lq, Dv)
  Shape lse_shape;        // (B, Hq, Lq), or (B, Lq)
  std::string as_passed;  // "query (...), key (...), value (...)" for messages

  // A tensor of the call's rank as 4-D: 3-D gets a head dim of 1.
  Tensor as_heads(const Tensor& t) const { return rank == 3 ? t.unsqueeze(1) : t; }
};

// Checks ranks, batch, heads (Hq a multiple of Hkv), lengths, head dims, the scale
// and the dropout probability; throws attn::Error naming `op` otherwise.
SdpaLayout sdpa_layout(std::string_view op, const Tensor& q, const Tensor& k, const Tensor& v,
                       const SdpaOptions& options);

// q, k, their strides, Dk and the scale into a kernel's params.
inline void set_sdpa_inputs(SdpaParams& p, const SdpaLayout& l) {
  p.key_dim = l.Dk;
  p.q = l.q.data();
  p.q_stride = Strides4::of(l.q);
  p.k = l.k.data();
  p.k_stride = Strides4::of(l.k);
  p.scale = l.scale;
}

}  // namespace attn::detail
