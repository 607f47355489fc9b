// The element types that the file readers convert to float32, and the conversion:
// one decoder for .npy and safetensors data.
#pragma once

#include <cstddef>
#include <cstdint>

namespace attn::io {

struct ElementType {
  enum class Kind { boolean, signed_int, unsigned_int, floating, bfloat };
  Kind kind = Kind::floating;
  std::size_t size = 4;     // bytes per element: 1, 2, 4 or 8 (bfloat: 2)
  bool big_endian = false;  // else little-endian; one-byte types have no order
};

// Converts `count` elements of `type` at `bytes` (count * type.size bytes, any
// alignment) to floats: integers and doubles round to nearest, bools are 0 or 1
// (any non-zero byte is true), halves and bfloat16s are exact (subnormals,
// infinities and NaN included).
void decode_elements(const ElementType& type, const std::uint8_t* bytes, std::size_t count,
                     float* out);

// The float that IEEE 754 binary16 `bits` encodes (exact: every half is a float).
float half_to_float(std::uint16_t bits);

// The float that bfloat16 `bits` encodes: the upper half of a float's bits.
float bfloat16_to_float(std::uint16_t bits);

}  // namespace attn::io
