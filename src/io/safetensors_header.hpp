// The JSON header of a safetensors file, parsed and checked against the data that
// follows it.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "attn/safetensors.hpp"
#include "io/elements.hpp"
#include "io/source.hpp"

namespace attn::io {

// The reference implementation refuses longer headers; so do the reader and writer.
inline constexpr std::uint64_t kMaxSafetensorsHeader = 100'000'000;

struct SafetensorsEntry {
  std::string name;
  std::string dtype;  // as written: "F32", "BF16", ...
  ElementType type;
  Shape shape;
  std::int64_t numel = 0;
  std::uint64_t begin = 0, end = 0;  // data_offsets: bytes [begin, end) of the data
};

struct SafetensorsHeader {
  std::vector<SafetensorsEntry> entries;  // in the header's order
  Metadata metadata;
};

// Parses `text` (the header's N bytes) for a file with `data_bytes` bytes after it.
// Refused, each through `source` with the entry's name: text that is not UTF-8 JSON
// or holds a NUL byte, nesting deeper than a header has, duplicate keys, an entry
// without dtype, shape or data_offsets or with values of the wrong type, unconverted
// dtypes, shapes whose element or byte count overflows, offsets whose span differs
// from what the shape needs or that leave the data, and byte ranges that overlap or
// leave bytes of the data to no tensor.
SafetensorsHeader parse_safetensors_header(std::string_view text, std::uint64_t data_bytes,
                                           const Source& source);

}  // namespace attn::io
