// parse_npy_dtype and decode_npy_data: numpy's dtype strings ('<f4', '>i8', '|b1')
// and their elements as floats. Bytes are assembled with shifts, so the host's own
// byte order never matters.
#include "io/npy_dtype.hpp"

#include <fmt/format.h>

#include <bit>
#include <cmath>
#include <string>

namespace attn::io {
namespace {

constexpr std::string_view kSupported =
    "supported: bool |b1; integers |i1 |u1 <i2 <u2 <i4 <u4 <i8 <u8; floats <f2 <f4 <f8; "
    "each of 2 bytes or more also big-endian ('>')";

// What an unsupported descr holds, in words, from numpy's type codes.
std::string what_it_is(std::string_view descr) {
  std::string_view rest = descr;
  std::string order_note = "; no byte order ('<', '>' or '|')";
  if (!rest.empty() && (rest[0] == '<' || rest[0] == '>' || rest[0] == '|' || rest[0] == '=')) {
    order_note = rest[0] == '='
                     ? "; byte order '=' is the writer's native one, which a file must spell "
                       "as '<' or '>'"
                     : "";
    rest.remove_prefix(1);
  }
  if (rest.empty()) return "no type code";
  const std::string size(rest.substr(1));
  std::string kind;
  switch (rest[0]) {
    case 'c': kind = "complex numbers"; break;
    case 'O': kind = "Python objects"; break;
    case 'U': kind = "unicode strings"; break;
    case 'S': case 'a': kind = "byte strings"; break;
    case 'V': kind = "raw bytes (void)"; break;
    case 'M': kind = "datetimes"; break;
    case 'm': kind = "timedeltas"; break;
    case 'f': kind = fmt::format("floats of {} bytes", size); break;
    case 'i': kind = fmt::format("signed integers of {} bytes", size); break;
    case 'u': kind = fmt::format("unsigned integers of {} bytes", size); break;
    case 'b': kind = fmt::format("bools of {} bytes", size); break;
    default: kind = "an unknown type code"; break;
  }
  return kind + order_note;
}

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

NpyDtype parse_npy_dtype(std::string_view descr, const NpySource& source) {
  auto unsupported = [&](const std::string& why) {
    source.fail(fmt::format("unsupported dtype '{}' ({}); {}", printable(descr), why, kSupported));
  };
  if (descr.size() != 3 || (descr[0] != '<' && descr[0] != '>' && descr[0] != '|') ||
      descr[2] < '1' || descr[2] > '8')
    unsupported(what_it_is(descr));
  NpyDtype dtype;
  dtype.size = static_cast<std::size_t>(descr[2] - '0');
  dtype.big_endian = descr[0] == '>';
  bool known = false;
  switch (descr[1]) {
    case 'b':
      dtype.kind = NpyDtype::Kind::boolean;
      known = dtype.size == 1;
      break;
    case 'i':
    case 'u':
      dtype.kind = descr[1] == 'i' ? NpyDtype::Kind::signed_int : NpyDtype::Kind::unsigned_int;
      known = dtype.size == 1 || dtype.size == 2 || dtype.size == 4 || dtype.size == 8;
      break;
    case 'f':
      dtype.kind = NpyDtype::Kind::floating;
      known = dtype.size == 2 || dtype.size == 4 || dtype.size == 8;
      break;
    default: break;
  }
  if (!known) unsupported(what_it_is(descr));
  if (descr[0] == '|' && dtype.size > 1)
    unsupported("byte order '|' is for one-byte types; a wider one needs '<' or '>'");
  return dtype;
}

void decode_npy_data(const NpyDtype& dtype, const std::uint8_t* bytes, std::size_t count,
                     float* out) {
  const bool big = dtype.big_endian;
  using Kind = NpyDtype::Kind;
  switch (dtype.kind) {
    case Kind::boolean:
      // numpy stores 0 or 1; any other byte is also true.
      return convert<std::uint8_t>(bytes, count, big, out,
                                   [](std::uint8_t b) { return b != 0 ? 1.0f : 0.0f; });
    case Kind::floating:
      if (dtype.size == 2) return convert<std::uint16_t>(bytes, count, big, out, half_to_float);
      if (dtype.size == 4)
        return convert<std::uint32_t>(bytes, count, big, out,
                                      [](std::uint32_t b) { return std::bit_cast<float>(b); });
      return convert<std::uint64_t>(bytes, count, big, out, [](std::uint64_t b) {
        return static_cast<float>(std::bit_cast<double>(b));
      });
    case Kind::signed_int:
      switch (dtype.size) {
        case 1: return convert<std::uint8_t>(bytes, count, big, out, [](std::uint8_t b) {
            return static_cast<float>(std::bit_cast<std::int8_t>(b));
          });
        case 2: return convert<std::uint16_t>(bytes, count, big, out, [](std::uint16_t b) {
            return static_cast<float>(std::bit_cast<std::int16_t>(b));
          });
        case 4: return convert<std::uint32_t>(bytes, count, big, out, [](std::uint32_t b) {
            return static_cast<float>(std::bit_cast<std::int32_t>(b));
          });
        default: return convert<std::uint64_t>(bytes, count, big, out, [](std::uint64_t b) {
            return static_cast<float>(std::bit_cast<std::int64_t>(b));
          });
      }
    case Kind::unsigned_int:
      switch (dtype.size) {
        case 1: return convert<std::uint8_t>(bytes, count, big, out,
                                             [](std::uint8_t b) { return static_cast<float>(b); });
        case 2: return convert<std::uint16_t>(bytes, count, big, out,
                                              [](std::uint16_t b) { return static_cast<float>(b); });
        case 4: return convert<std::uint32_t>(bytes, count, big, out,
                                              [](std::uint32_t b) { return static_cast<float>(b); });
        default: return convert<std::uint64_t>(bytes, count, big, out,
                                               [](std::uint64_t b) { return static_cast<float>(b); });
      }
  }
}

}  // namespace attn::io
