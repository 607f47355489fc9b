// The dtypes parse_npy converts to float32, and the conversion.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "io/npy_source.hpp"

namespace attn::io {

struct NpyDtype {
  enum class Kind { boolean, signed_int, unsigned_int, floating };
  Kind kind = Kind::floating;
  std::size_t size = 4;     // bytes per element: 1, 2, 4 or 8
  bool big_endian = false;  // '>'; '<' and '|' (one byte) read as little-endian
};

// The dtype a header's 'descr' names, e.g. '<f4'. Throws attn::Error through
// `source` for every other one, saying what it is ("complex", "strings", ...) and
// listing the supported ones.
NpyDtype parse_npy_dtype(std::string_view descr, const NpySource& source);

// Converts `count` elements of `dtype` at `bytes` (count * dtype.size bytes, any
// alignment) to floats: integers and doubles round to nearest, bools are 0 or 1,
// halves are exact (subnormals, infinities and NaN included).
void decode_npy_data(const NpyDtype& dtype, const std::uint8_t* bytes, std::size_t count,
                     float* out);

// The float that IEEE 754 binary16 `bits` encodes (exact: every half is a float).
float half_to_float(std::uint16_t bits);

}  // namespace attn::io
