// Validation at the API boundary: every message starts with the op's name in
// brackets and names the argument and the shapes involved.
#pragma once

#include <string>
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
void check_probability(std::string_view op, std::string_view name, double p,
                       const std::string& context = "");

}  // namespace attn::detail
