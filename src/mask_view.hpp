// A Mask checked against the (B, H, Lq, Lk) scores of one call, in the form the
// kernels read: raw pointers with broadcast strides, and the structured terms
// as they are, so that fast kernels can skip whole blocks from them.
#pragma once

#include <cmath>
#include <cstdint>
#include <string_view>
#include <vector>

#include "attn/mask.hpp"

namespace attn::detail {

// Strides of a 4-D view such as (B, H, L, D): the last field is the innermost dim.
struct Strides4 {
  std::int64_t b = 0, h = 0, i = 0, j = 0;
  std::int64_t at(std::int64_t b_, std::int64_t h_, std::int64_t i_, std::int64_t j_) const {
    return b_ * b + h_ * h + i_ * i + j_ * j;
  }
  template <class T>
  static Strides4 of(const T& view4) {
    return {view4.stride(0), view4.stride(1), view4.stride(2), view4.stride(3)};
  }
};

struct MaskView {
  // Lq, and the number of keys the terms describe: Lk less the unmasked keys
  // appended after them, which every query sees.
  std::int64_t queries = 0, keys = 0;

  struct Lengths {
    const std::int64_t* data;
    std::int64_t stride_b, stride_i;  // stride_i = 0 for 1-D (B) lengths
  };
  struct Dense {
    const bool* data;
    Strides4 stride;
    bool keep;  // the value that means "may attend"
  };
  struct Bias {
    const float* data;
    Strides4 stride;
  };

  std::vector<Align> causal;
  std::vector<Lengths> lengths;
  std::vector<WindowTerm> windows;
  std::vector<Dense> dense;
  std::vector<Bias> biases;
  Mask source;  // keeps the tensors that the pointers above point into alive

  // The key position that query i sits at under `align`.
  std::int64_t diagonal(Align align, std::int64_t i) const {
    return align == Align::top_left ? i : i + keys - queries;
  }

  // Whether the structural and boolean terms let query i of (b, h) see key j.
  bool allowed(std::int64_t b, std::int64_t h, std::int64_t i, std::int64_t j) const {
    if (j >= keys) return true;  // an appended unmasked key
    for (Align a : causal)
      if (j > diagonal(a, i)) return false;
    for (const Lengths& l : lengths)
      if (j >= l.data[b * l.stride_b + i * l.stride_i]) return false;
    for (const WindowTerm& w : windows) {
      // Differences, not p - left and p + right, which overflow for huge windows.
      const std::int64_t p = diagonal(w.align, i);
      if (p - j > w.left || j - p > w.right) return false;
    }
    for (const Dense& d : dense)
      if (d.data[d.stride.at(b, h, i, j)] != d.keep) return false;
    return true;
  }

  // The sum of the additive terms at (b, h, i, j); -inf blocks.
  double bias(std::int64_t b, std::int64_t h, std::int64_t i, std::int64_t j) const {
    if (j >= keys) return 0.0;
    double sum = 0.0;
    for (const Bias& t : biases) sum += t.data[t.stride.at(b, h, i, j)];
    return sum;
  }
};

// Checks every term of `mask` against (B, H, Lq, Lk) and throws attn::Error
// naming `op` when a term does not fit: lengths of the wrong shape, negative or
// beyond Lk; dense or bias tensors that do not broadcast; negative windows.
MaskView resolve_mask(std::string_view op, const Mask& mask, std::int64_t batch,
                      std::int64_t heads, std::int64_t queries, std::int64_t keys);

}  // namespace attn::detail
