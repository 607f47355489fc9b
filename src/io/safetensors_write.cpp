// serialize_safetensors and save_safetensors: F32 tensors laid out as the reference
// writer lays them out (safetensors' serialize): sorted by name, data in that order,
// a compact JSON header with "__metadata__" first, padded with spaces to a multiple
// of 8 bytes so that the data starts 8-byte aligned.
#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <nlohmann/json.hpp>

#include "attn/safetensors.hpp"
#include "io/file_bytes.hpp"
#include "io/safetensors_header.hpp"
#include "io/source.hpp"

namespace attn::io {
namespace {

constexpr std::size_t kAlign = 8;
constexpr std::string_view kMetadataKey = "__metadata__";

// `s` as a JSON string literal (quoted, escaped); `s` is checked to be UTF-8 first.
std::string json_string(const std::string& s, std::string_view what, const Source& source) {
  if (const std::size_t at = invalid_utf8_at(s); at != std::string::npos)
    source.fail(fmt::format("{} '{}' is not UTF-8 (byte {} is 0x{:02X}); the header is JSON",
                            what, printable(s), at, static_cast<unsigned char>(s[at])));
  return nlohmann::json(s).dump();
}

std::vector<std::uint8_t> serialize(const NamedTensors& tensors, const Metadata& metadata,
                                    const Source& source) {
  std::vector<const NamedTensors::value_type*> sorted;
  for (const auto& entry : tensors) sorted.push_back(&entry);
  std::stable_sort(sorted.begin(), sorted.end(),
                   [](const auto* a, const auto* b) { return a->first < b->first; });

  std::string header = "{";
  if (!metadata.empty()) {
    header += "\"__metadata__\":{";
    for (auto it = metadata.begin(); it != metadata.end(); ++it) {
      if (it != metadata.begin()) header += ',';
      header += json_string(it->first, "the metadata key", source) + ':' +
                json_string(it->second, "the metadata value", source);
    }
    header += '}';
  }
  std::uint64_t offset = 0;
  for (std::size_t i = 0; i < sorted.size(); ++i) {
    const auto& [name, t] = *sorted[i];
    if (i > 0 && sorted[i - 1]->first == name)
      source.fail(fmt::format("the tensor name '{}' appears twice", printable(name)));
    if (name == kMetadataKey)
      source.fail("the tensor name '__metadata__' is reserved for the file's metadata");
    if (!t.defined())
      source.fail(fmt::format("tensor '{}' is undefined (no shape, no storage)", printable(name)));
    const std::uint64_t bytes = static_cast<std::uint64_t>(t.numel()) * sizeof(float);
    if (header.size() > 1) header += ',';
    header += fmt::format("{}:{{\"dtype\":\"F32\",\"shape\":[{}],\"data_offsets\":[{},{}]}}",
                          json_string(name, "the tensor name", source),
                          fmt::join(t.shape(), ","), offset, offset + bytes);
    offset += bytes;
  }
  header += '}';
  header.append((kAlign - header.size() % kAlign) % kAlign, ' ');
  if (header.size() > kMaxSafetensorsHeader)
    source.fail(fmt::format("the header would be {} bytes, above the {} that readers accept",
                            header.size(), kMaxSafetensorsHeader));

  std::vector<std::uint8_t> out;
  out.reserve(8 + header.size() + offset);
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<std::uint8_t>(header.size() >> (8 * i)));
  out.insert(out.end(), header.begin(), header.end());
  // for_each walks each view in logical (row-major) order, whatever its strides.
  for (const auto* entry : sorted)
    entry->second.for_each([&out](float& x) {
      const auto bits = std::bit_cast<std::uint32_t>(x);
      for (int i = 0; i < 4; ++i) out.push_back(static_cast<std::uint8_t>(bits >> (8 * i)));
    });
  return out;
}

}  // namespace

std::vector<std::uint8_t> serialize_safetensors(const NamedTensors& tensors, const Metadata& metadata) {
  return serialize(tensors, metadata, Source{"serialize_safetensors", "tensors"});
}

void save_safetensors(const std::string& path, const NamedTensors& tensors, const Metadata& metadata) {
  const Source source{"save_safetensors", path};
  write_file(path, serialize(tensors, metadata, source), source);
}

}  // namespace attn::io
