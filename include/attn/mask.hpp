// attn::Mask: what may attend to what, kept as structure.
//
// A mask is a conjunction of terms. Each term is evaluated for a score at
// (batch b, head h, query i, key j) of a (B, H, Lq, Lk) score tensor:
//   causal(top_left)        j <= i
//   causal(bottom_right)    j <= i + (Lk - Lq)            (the last query sees every key)
//   lengths((B))            j < valid_lens[b]             (d2l's valid_lens, 1-D)
//   lengths((B, Lq))        j < valid_lens[b, i]          (d2l's valid_lens, 2-D)
//   sliding_window(l, r)    p - l <= j <= p + r, p = i (top_left) or i + Lk - Lq
//   dense(m, keep)          m[b, h, i, j] is true         (torch SDPA's boolean attn_mask)
//   dense(m, block)         m[b, h, i, j] is false        (nn.MultiheadAttention, `mask * -1e9`)
//   bias(t)                 adds t[b, h, i, j] to the score (-inf entries block)
// Dense and bias tensors broadcast to (B, H, Lq, Lk) with NumPy rules, so a
// (Lq, Lk) mask or a (B, 1, 1, Lk) padding mask is never expanded in memory.
// Terms combine with `&`. A query row with no allowed key gets zero output,
// zero weights and log-sum-exp -inf, never NaN. (A +inf bias is not a mask: it
// gives NaN, as in PyTorch.)
//
// `append_unmasked_keys(n)` says that the terms describe the first Lk - n keys
// and that n more keys follow which every query sees, with no bias: the keys
// that nn.MultiheadAttention appends for add_bias_kv and add_zero_attn.
#pragma once

#include <cstdint>
#include <vector>

#include "attn/tensor.hpp"

namespace attn {

// Where the diagonal of a causal or windowed mask sits when Lq != Lk.
enum class Align {
  top_left,      // query i is at key position i (PyTorch's is_causal)
  bottom_right,  // query i is at key position i + Lk - Lq (decoding with a KV cache)
};

// What `true` means in a dense boolean mask. PyTorch uses both conventions:
// F.scaled_dot_product_attention keeps True, nn.MultiheadAttention blocks True.
enum class Polarity { keep, block };

struct WindowTerm {
  std::int64_t left = 0;   // keys before the query's position that it may see
  std::int64_t right = 0;  // keys after it
  Align align = Align::top_left;
};

struct DenseTerm {
  BoolTensor mask;  // broadcastable to (B, H, Lq, Lk)
  Polarity polarity = Polarity::keep;
};

class Mask {
 public:
  Mask() = default;  // no masking

  static Mask causal(Align align = Align::top_left);
  // d2l's valid_lens: (B), or (B, Lq) for a length per query. Values in [0, Lk].
  static Mask lengths(IndexTensor valid_lens);
  static Mask lengths(const std::vector<std::int64_t>& per_batch);
  static Mask sliding_window(std::int64_t left, std::int64_t right = 0,
                             Align align = Align::top_left);
  static Mask dense(BoolTensor mask, Polarity polarity);
  static Mask keep(BoolTensor mask) { return dense(std::move(mask), Polarity::keep); }
  static Mask block(BoolTensor mask) { return dense(std::move(mask), Polarity::block); }
  static Mask bias(Tensor additive);

  Mask operator&(const Mask& other) const;
  Mask& operator&=(const Mask& other);

  // This mask over the first Lk - n keys, followed by n keys open to every query.
  Mask append_unmasked_keys(std::int64_t n) const;
  std::int64_t unmasked_trailing_keys() const { return unmasked_trailing_keys_; }

  bool is_none() const {
    return causal_.empty() && lengths_.empty() && windows_.empty() && dense_.empty() &&
           biases_.empty();
  }
  const std::vector<Align>& causal_terms() const { return causal_; }
  const std::vector<IndexTensor>& length_terms() const { return lengths_; }
  const std::vector<WindowTerm>& window_terms() const { return windows_; }
  const std::vector<DenseTerm>& dense_terms() const { return dense_; }
  const std::vector<Tensor>& bias_terms() const { return biases_; }

 private:
  std::vector<Align> causal_;
  std::vector<IndexTensor> lengths_;
  std::vector<WindowTerm> windows_;
  std::vector<DenseTerm> dense_;
  std::vector<Tensor> biases_;
  std::int64_t unmasked_trailing_keys_ = 0;
};

// The mask as a dense (B, H, Lq, Lk) boolean tensor, true = may attend (for
// pictures, tests and the rare module path that must concatenate keys).
BoolTensor materialize(const Mask& mask, std::int64_t batch, std::int64_t heads,
                       std::int64_t queries, std::int64_t keys);

}  // namespace attn
