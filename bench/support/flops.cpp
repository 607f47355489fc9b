#include "support/flops.hpp"

#include <algorithm>

namespace attn::bench {

std::int64_t allowed_pairs(std::int64_t lq, std::int64_t lk, std::optional<Align> causal) {
  if (!causal) return lq * lk;
  // Query i sees keys j <= i + offset (Mask::causal, attn/mask.hpp).
  const std::int64_t offset = *causal == Align::top_left ? 0 : lk - lq;
  std::int64_t pairs = 0;
  for (std::int64_t i = 0; i < lq; ++i) pairs += std::clamp<std::int64_t>(i + offset + 1, 0, lk);
  return pairs;
}

double attention_flops(std::int64_t batch, std::int64_t heads, std::int64_t lq, std::int64_t lk,
                       std::int64_t head_dim, std::optional<Align> causal) {
  return 4.0 * static_cast<double>(batch) * static_cast<double>(heads) *
         static_cast<double>(allowed_pairs(lq, lk, causal)) * static_cast<double>(head_dim);
}

}  // namespace attn::bench
