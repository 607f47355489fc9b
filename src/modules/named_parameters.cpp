#include "attn/modules.hpp"
#include "ops/check.hpp"

namespace attn {

const Tensor& find_parameter(const NamedParameters& params, std::string_view name) {
  std::string names;
  for (const auto& [n, t] : params) {
    if (n == name) return t;
    names += (names.empty() ? "" : ", ") + n;
  }
  detail::fail("find_parameter", "no parameter named " + std::string(name) +
                                     "; the names are: " + (names.empty() ? "(none)" : names));
}

}  // namespace attn
