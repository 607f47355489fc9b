// parse_safetensors_dtype: the format's dtype names as element types. Every element
// is little-endian (the format has no other byte order).
#include "io/safetensors_dtype.hpp"

#include <fmt/format.h>

namespace attn::io {
namespace {

using Kind = ElementType::Kind;

struct Known {
  std::string_view name;
  ElementType type;
};

constexpr Known kConverted[] = {
    {"BOOL", {Kind::boolean, 1}},       {"U8", {Kind::unsigned_int, 1}},
    {"I8", {Kind::signed_int, 1}},      {"U16", {Kind::unsigned_int, 2}},
    {"I16", {Kind::signed_int, 2}},     {"U32", {Kind::unsigned_int, 4}},
    {"I32", {Kind::signed_int, 4}},     {"U64", {Kind::unsigned_int, 8}},
    {"I64", {Kind::signed_int, 8}},     {"F16", {Kind::floating, 2}},
    {"BF16", {Kind::bfloat, 2}},        {"F32", {Kind::floating, 4}},
    {"F64", {Kind::floating, 8}},
};

// Dtypes of the format that have no float32 conversion here, in words.
constexpr std::pair<std::string_view, std::string_view> kNotConverted[] = {
    {"F8_E4M3", "8-bit floats"}, {"F8_E5M2", "8-bit floats"}, {"F8_E8M0", "8-bit scales"},
    {"F6_E2M3", "6-bit floats"}, {"F6_E3M2", "6-bit floats"}, {"F4", "4-bit floats"},
    {"C64", "complex numbers"},
};

constexpr std::string_view kSupported =
    "supported: BOOL, U8, I8, U16, I16, U32, I32, U64, I64, F16, BF16, F32, F64";

}  // namespace

ElementType parse_safetensors_dtype(std::string_view name, std::string_view tensor,
                                    const Source& source) {
  for (const Known& k : kConverted)
    if (k.name == name) return k.type;
  for (const auto& [other, what] : kNotConverted)
    if (other == name)
      source.fail(fmt::format("tensor '{}': dtype {} ({}) is not converted to float32; {}",
                              printable(tensor), name, what, kSupported));
  source.fail(fmt::format("tensor '{}': unknown dtype '{}'; {}", printable(tensor),
                          printable(name), kSupported));
}

}  // namespace attn::io
