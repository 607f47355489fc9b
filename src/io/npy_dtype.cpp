// parse_npy_dtype: numpy's dtype strings ('<f4', '>i8', '|b1') as the element types
// that decode_elements converts.
#include "io/npy_dtype.hpp"

#include <fmt/format.h>

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

}  // namespace

ElementType parse_npy_dtype(std::string_view descr, const Source& source) {
  auto unsupported = [&](const std::string& why) {
    source.fail(fmt::format("unsupported dtype '{}' ({}); {}", printable(descr), why, kSupported));
  };
  if (descr.size() != 3 || (descr[0] != '<' && descr[0] != '>' && descr[0] != '|') ||
      descr[2] < '1' || descr[2] > '8')
    unsupported(what_it_is(descr));
  ElementType dtype;
  dtype.size = static_cast<std::size_t>(descr[2] - '0');
  dtype.big_endian = descr[0] == '>';
  bool known = false;
  switch (descr[1]) {
    case 'b':
      dtype.kind = ElementType::Kind::boolean;
      known = dtype.size == 1;
      break;
    case 'i':
    case 'u':
      dtype.kind = descr[1] == 'i' ? ElementType::Kind::signed_int : ElementType::Kind::unsigned_int;
      known = dtype.size == 1 || dtype.size == 2 || dtype.size == 4 || dtype.size == 8;
      break;
    case 'f':
      dtype.kind = ElementType::Kind::floating;
      known = dtype.size == 2 || dtype.size == 4 || dtype.size == 8;
      break;
    default: break;
  }
  if (!known) unsupported(what_it_is(descr));
  if (descr[0] == '|' && dtype.size > 1)
    unsupported("byte order '|' is for one-byte types; a wider one needs '<' or '>'");
  return dtype;
}

}  // namespace attn::io
