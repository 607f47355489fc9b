// Source: where untrusted bytes came from, so that every error of a file reader
// names the function and the file: "[read_npy] weights.npy: has 12 bytes of data, ...".
// Also the text helpers those messages need.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace attn::io {

struct Source {
  std::string_view op;    // the public function: read_npy, parse_safetensors, ...
  std::string_view name;  // the path, or what the caller calls the bytes

  [[noreturn]] void fail(const std::string& problem) const;
};

// `bytes` as text safe to print in a message: printable ASCII as is, anything else
// as \xNN, cut after `max_chars` bytes with "..." (headers can be 4 GiB long).
std::string printable(std::string_view bytes, std::size_t max_chars = 80);

// Position of the first byte that breaks UTF-8 (RFC 3629: no overlong forms, no
// surrogates, nothing above U+10FFFF), or npos when `s` is all UTF-8.
std::size_t invalid_utf8_at(std::string_view s);

}  // namespace attn::io
