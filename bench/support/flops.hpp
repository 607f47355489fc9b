// The one FLOP count of every attention benchmark (bench/, `attn bench`).
//
// A forward pass does two matrix products per allowed (query, key) pair: q . k
// (2 * D FLOPs) and p * v (2 * D FLOPs), so 4 * B * H * pairs * D, with pairs =
// Lq * Lk without a mask. A causal mask counts only the allowed pairs: exactly
// Lq * (Lq + 1) / 2 per head when Lq == Lk. The softmax's exp and divisions are
// not counted, as in FlashAttention's flops().
#pragma once

#include <cstdint>
#include <optional>

#include "attn/mask.hpp"

namespace attn::bench {

// The (query, key) pairs that Mask::causal(align) allows in an Lq x Lk score matrix
// (all Lq * Lk when `causal` is empty).
std::int64_t allowed_pairs(std::int64_t lq, std::int64_t lk, std::optional<Align> causal);

// Forward FLOPs of attention over q (B, H, Lq, D), k and v (B, H, Lk, D).
double attention_flops(std::int64_t batch, std::int64_t heads, std::int64_t lq, std::int64_t lk,
                       std::int64_t head_dim, std::optional<Align> causal = std::nullopt);

}  // namespace attn::bench
