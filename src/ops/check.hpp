// Validation at the API boundary: every message starts with the op's name in
// brackets and names the argument and the shapes involved.
#pragma once

#include <string>
#include <utility>
#include <string_view>

#include "attn/error.hpp"
#include "attn/tensor.hpp"

namespace attn::detail {

[[noreturn]] void fail(std::string_view op, const std::string& message);

// "query (2, 8, 16, 64)"
template <class T>
std::string describe(std::string_view name, const BasicTensor<T>& t) {
  return std::string(name) + " " + t.shape_string();
}

// Throws unless t has `rank` dims.
template <class T>
void check_rank(std::string_view op, std::string_view name, const BasicTensor<T>& t,
                std::int64_t rank, std::string_view layout) {
  if (t.rank() != rank)
    fail(op, std::string(name) + " must be " + std::to_string(rank) + "-D " + std::string(layout) +
                 ", got " + describe(name, t));
}

// Throws unless 0 <= p <= 1; `context` (the shapes of the call) ends the message.
// Whether the memory spans of two views intersect (conservatively: the ranges
// from their lowest to their highest element).
template <class T>
bool overlaps(const BasicTensor<T>& a, const BasicTensor<T>& b) {
  if (a.numel() == 0 || b.numel() == 0) return false;
  const auto span = [](const BasicTensor<T>& t) {
    const T* lo = t.data();
    const T* hi = t.data();
    for (std::int64_t d = 0; d < t.rank(); ++d) {
      const std::int64_t reach = (t.size(d) - 1) * t.stride(d);
      (reach < 0 ? lo : hi) += reach;
    }
    return std::pair{lo, hi};
  };
  const auto [a_lo, a_hi] = span(a);
  const auto [b_lo, b_hi] = span(b);
  return a_lo <= b_hi && b_lo <= a_hi;
}

// Whether some dim of size > 1 has stride 0 (an expanded, broadcast view).
template <class T>
bool broadcasts(const BasicTensor<T>& t) {
  for (std::int64_t d = 0; d < t.rank(); ++d)
    if (t.size(d) > 1 && t.stride(d) == 0) return true;
  return false;
}

void check_probability(std::string_view op, std::string_view name, double p,
                       const std::string& context = "");

}  // namespace attn::detail
