// decode_elements: file elements as floats. Bytes are assembled with shifts, so the
// host's own byte order never matters.
#include "io/elements.hpp"

#include <bit>
#include <cmath>
#include <type_traits>

namespace attn::io {
namespace {

template <class U>
U load(const std::uint8_t* p, bool big_endian) {
  U v = 0;
  if (big_endian) {
    for (std::size_t i = 0; i < sizeof(U); ++i) v = static_cast<U>(v << 8 | p[i]);
  } else {
    for (std::size_t i = sizeof(U); i-- > 0;) v = static_cast<U>(v << 8 | p[i]);
  }
  return v;
}

// Loads each element's bits as U and converts them with `to_float`.
template <class U, class F>
void convert(const std::uint8_t* bytes, std::size_t count, bool big_endian, float* out,
             F to_float) {
  for (std::size_t i = 0; i < count; ++i)
    out[i] = to_float(load<U>(bytes + i * sizeof(U), big_endian));
}

// Integers of type Int, signed or not, as the nearest float.
template <class Int>
void convert_int(const std::uint8_t* bytes, std::size_t count, bool big_endian, float* out) {
  using U = std::make_unsigned_t<Int>;
  convert<U>(bytes, count, big_endian, out,
             [](U b) { return static_cast<float>(std::bit_cast<Int>(b)); });
}

}  // namespace

float half_to_float(std::uint16_t bits) {
  const std::uint32_t sign = static_cast<std::uint32_t>(bits >> 15) << 31;
  const std::uint32_t exponent = (bits >> 10) & 0x1F;
  const std::uint32_t mantissa = bits & 0x3FF;
  if (exponent == 0) {
    // Zero or subnormal: mantissa * 2^-24, exact in float.
    const float magnitude = std::ldexp(static_cast<float>(mantissa), -24);
    return sign ? -magnitude : magnitude;
  }
  if (exponent == 0x1F)  // infinity, or NaN with its payload kept
    return std::bit_cast<float>(sign | 0x7F800000u | mantissa << 13);
  // Rebias the exponent from 15 to 127; the mantissa widens from 10 to 23 bits.
  return std::bit_cast<float>(sign | (exponent + 127 - 15) << 23 | mantissa << 13);
}

float bfloat16_to_float(std::uint16_t bits) {
  return std::bit_cast<float>(static_cast<std::uint32_t>(bits) << 16);
}

void decode_elements(const ElementType& type, const std::uint8_t* bytes, std::size_t count,
                     float* out) {
  const bool big = type.big_endian;
  using Kind = ElementType::Kind;
  switch (type.kind) {
    case Kind::boolean:
      return convert<std::uint8_t>(bytes, count, big, out,
                                   [](std::uint8_t b) { return b != 0 ? 1.0f : 0.0f; });
    case Kind::bfloat:
      return convert<std::uint16_t>(bytes, count, big, out, bfloat16_to_float);
    case Kind::floating:
      if (type.size == 2) return convert<std::uint16_t>(bytes, count, big, out, half_to_float);
      if (type.size == 4)
        return convert<std::uint32_t>(bytes, count, big, out,
                                      [](std::uint32_t b) { return std::bit_cast<float>(b); });
      return convert<std::uint64_t>(bytes, count, big, out, [](std::uint64_t b) {
        return static_cast<float>(std::bit_cast<double>(b));
      });
    case Kind::signed_int:
      switch (type.size) {
        case 1: return convert_int<std::int8_t>(bytes, count, big, out);
        case 2: return convert_int<std::int16_t>(bytes, count, big, out);
        case 4: return convert_int<std::int32_t>(bytes, count, big, out);
        default: return convert_int<std::int64_t>(bytes, count, big, out);
      }
    case Kind::unsigned_int:
      switch (type.size) {
        case 1: return convert_int<std::uint8_t>(bytes, count, big, out);
        case 2: return convert_int<std::uint16_t>(bytes, count, big, out);
        case 4: return convert_int<std::uint32_t>(bytes, count, big, out);
        default: return convert_int<std::uint64_t>(bytes, count, big, out);
      }
  }
}

}  // namespace attn::io
