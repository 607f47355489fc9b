// Tensors printed the way torch prints them, so that the demo reads like the
// documents: "tensor([[0.5000, 0.5000, 0.0000, 0.0000]])".
#include <algorithm>
#include <cmath>
#include <functional>

#include <fmt/format.h>

#include "attn/tensor.hpp"

namespace attn {
namespace {

constexpr std::size_t kPrefix = 7;  // strlen("tensor(")

// Lays out already formatted elements as nested brackets.
std::string nest(const std::vector<std::string>& cells, const Shape& shape) {
  if (shape.empty()) return cells.empty() ? "" : cells[0];
  const std::int64_t rank = static_cast<std::int64_t>(shape.size());
  std::string out;
  std::size_t next = 0;
  std::function<void(std::int64_t)> block = [&](std::int64_t dim) {
    out += '[';
    for (std::int64_t i = 0; i < shape[dim]; ++i) {
      if (i > 0) {
        if (dim == rank - 1) {
          out += ", ";
        } else {
          out += ',';
          out += std::string(static_cast<std::size_t>(rank - dim - 1), '\n');
          out += std::string(kPrefix + static_cast<std::size_t>(dim) + 1, ' ');
        }
      }
      if (dim == rank - 1) {
        out += cells[next++];
      } else {
        block(dim + 1);
      }
    }
    out += ']';
  };
  block(0);
  return out;
}

template <class T, class F>
std::string print(const BasicTensor<T>& t, F&& format_one) {
  std::vector<std::string> cells;
  for (const T& x : t.to_vector()) cells.push_back(format_one(x));
  std::size_t width = 0;
  for (const auto& c : cells) width = std::max(width, c.size());
  for (auto& c : cells) c.insert(0, width - c.size(), ' ');
  return "tensor(" + nest(cells, t.shape()) + ")";
}

}  // namespace

std::string to_string(const Tensor& t, int precision) {
  const std::vector<float> values = t.to_vector();
  bool integral = true;
  float largest = 0, smallest_nonzero = INFINITY;
  for (float x : values) {
    if (!std::isfinite(x)) continue;
    integral = integral && x == std::trunc(x);
    largest = std::max(largest, std::fabs(x));
    if (x != 0) smallest_nonzero = std::min(smallest_nonzero, std::fabs(x));
  }
  // torch's rule: integers print as "2.", a wide range of magnitudes in
  // scientific notation, everything else with `precision` decimals.
  const bool scientific =
      !integral && (largest >= 1e8f || (smallest_nonzero < 1e-4f) || largest / smallest_nonzero > 1e3f);
  return print(t, [&](float x) -> std::string {
    if (std::isnan(x)) return "nan";
    if (std::isinf(x)) return x > 0 ? "inf" : "-inf";
    if (integral) return fmt::format("{:.0f}.", x);
    if (scientific) return fmt::format("{:.{}e}", x, precision);
    return fmt::format("{:.{}f}", x, precision);
  });
}

std::string to_string(const IndexTensor& t) {
  return print(t, [](std::int64_t x) { return std::to_string(x); });
}

std::string to_string(const BoolTensor& t) {
  return print(t, [](bool x) { return std::string(x ? "True" : "False"); });
}

}  // namespace attn
