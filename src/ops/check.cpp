#include "ops/check.hpp"

#include <cmath>

namespace attn::detail {

void fail(std::string_view op, const std::string& message) {
  throw Error("[" + std::string(op) + "] " + message);
}

void check_probability(std::string_view op, std::string_view name, double p,
                       const std::string& context) {
  if (!(p >= 0.0 && p <= 1.0))
    fail(op, std::string(name) + " must be a probability in [0, 1], got " + std::to_string(p) +
                 (context.empty() ? "" : "; " + context));
}

}  // namespace attn::detail
