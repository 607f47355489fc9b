// attn::io safetensors: the format PyTorch weights travel in.
//
//   attn::io::SafetensorsFile f = attn::io::load_safetensors("mha.safetensors");
//   for (const auto& [name, t] : f.tensors) ...;   // (name, float32 tensor), file order
//   attn::io::save_safetensors("out.safetensors", {{"w", w}}, {{"format", "pt"}});
//
// The format: an 8-byte little-endian length N, N bytes of UTF-8 JSON
//   {"name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}, ...,
//    "__metadata__": {"key": "value", ...}}
// (padded at the end with whitespace), then the data: each tensor's elements in
// row-major order, little-endian, at [begin, end) counted from the byte after the header.
//
// Reading converts BOOL, U8, I8, U16, I16, U32, I32, U64, I64, F16, BF16, F32 and F64
// to float32 (integers and doubles round to nearest; halves and bfloat16s are exact).
// Other dtypes of the format (8-, 6- and 4-bit floats, complex) are refused by name.
// The reader trusts nothing: the header is limited to 100,000,000 bytes (as the
// reference implementation), must be UTF-8 JSON starting with '{', with no duplicate
// keys, and the tensors' byte ranges must cover the data exactly, without holes or
// overlaps, each as long as its shape and dtype need. Keys of a tensor entry other than
// dtype, shape and data_offsets are ignored, as the reference implementation does.
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "attn/tensor.hpp"

namespace attn::io {

// Named tensors in order; the same type as attn::NamedParameters, so a module's
// named_parameters() and state_dict() can be saved as they are.
using NamedTensors = std::vector<std::pair<std::string, Tensor>>;
using Metadata = std::map<std::string, std::string>;

struct SafetensorsFile {
  NamedTensors tensors;  // dense row-major float32 tensors, in the header's order
  Metadata metadata;     // the header's "__metadata__", empty when absent

  // The tensor called `name`, or null.
  const Tensor* find(std::string_view name) const;
  // The tensor called `name`; throws attn::Error listing the names present when absent.
  const Tensor& at(std::string_view name) const;
};

// The tensors of the safetensors file at `path`, read through a read-only memory
// mapping. Throws attn::Error naming the path and the problem: the file cannot be
// read, is malformed (see above), or holds a dtype this reader does not convert.
SafetensorsFile load_safetensors(const std::string& path);

// The tensors in `bytes`, the whole contents of a safetensors file. `source` names the
// bytes in error messages (a path, "stdin", ...). Throws attn::Error as load_safetensors.
SafetensorsFile parse_safetensors(std::span<const std::uint8_t> bytes, std::string_view source);

// `tensors` as a safetensors file of F32 tensors (any view, written in its logical
// order), as the reference writer lays it out: tensors sorted by name with their data
// in that order, "__metadata__" first when `metadata` is not empty, the compact JSON
// header padded with spaces to a multiple of 8 bytes. Throws attn::Error for an
// undefined tensor, a repeated name, the name "__metadata__", or names or metadata
// that are not UTF-8.
std::vector<std::uint8_t> serialize_safetensors(const NamedTensors& tensors,
                                                const Metadata& metadata = {});

// Writes serialize_safetensors(tensors, metadata) to `path`. Throws attn::Error as
// serialize_safetensors does, or naming the path when it cannot be written.
void save_safetensors(const std::string& path, const NamedTensors& tensors,
                      const Metadata& metadata = {});

}  // namespace attn::io
