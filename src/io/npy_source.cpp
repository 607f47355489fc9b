// NpySource::fail and printable: the one place that words every .npy error.
#include "io/npy_source.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "attn/error.hpp"

namespace attn::io {

void NpySource::fail(const std::string& problem) const {
  throw Error(fmt::format("[{}] {}: {}", op, name, problem));
}

std::string printable(std::string_view bytes, std::size_t max_chars) {
  std::string out;
  const std::size_t n = std::min(bytes.size(), max_chars);
  for (std::size_t i = 0; i < n; ++i) {
    const auto c = static_cast<unsigned char>(bytes[i]);
    if (c >= 0x20 && c < 0x7F) {
      out += static_cast<char>(c);
    } else {
      out += fmt::format("\\x{:02x}", c);
    }
  }
  if (n < bytes.size()) out += "...";
  return out;
}

}  // namespace attn::io
