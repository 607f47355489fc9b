// The widths of one MultiHeadAttention configuration, with torch's defaults filled
// in: shared by the forward and the backward.
#pragma once

#include <cstdint>

#include "attn/modules.hpp"

namespace attn::detail {

struct Widths {
  std::int64_t embed, heads, query_in, key_in, value_in, qk_proj, v_proj;
};

inline Widths widths_of(const MultiHeadAttentionOptions& o) {
  return {o.embed_dim,
          o.num_heads,
          o.qdim.value_or(o.embed_dim),
          o.kdim.value_or(o.embed_dim),
          o.vdim.value_or(o.embed_dim),
          o.qk_proj_dim.value_or(o.embed_dim),
          o.v_proj_dim.value_or(o.embed_dim)};
}

}  // namespace attn::detail
