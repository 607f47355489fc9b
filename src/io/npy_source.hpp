// NpySource: where .npy bytes came from, so that every error names the function
// and the file: "[read_npy] weights.npy: has 12 bytes of data, ...".
#pragma once

#include <string>
#include <string_view>

namespace attn::io {

struct NpySource {
  std::string_view op;    // the public function: read_npy or parse_npy
  std::string_view name;  // the path, or what the caller calls the bytes

  [[noreturn]] void fail(const std::string& problem) const;
};

// `bytes` as text safe to print in a message: printable ASCII as is, anything else
// as \xNN, cut after `max_chars` bytes with "..." (headers can be 4 GiB long).
std::string printable(std::string_view bytes, std::size_t max_chars = 80);

}  // namespace attn::io
