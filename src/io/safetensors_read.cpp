// load_safetensors and parse_safetensors: the 8-byte header length, the header, then
// each tensor's data converted to float32, every length checked against the size of
// the input before anything is read or allocated. load_safetensors maps the file
// and parses the mapping, so both read the same way.
//
// Layout of a safetensors file:
//   N                 uint64 LE
//   header            N bytes of UTF-8 JSON, maybe padded with spaces
//   data              the tensors' bytes, at offsets relative to the data's start
#include <fmt/format.h>

#include <algorithm>

#include "attn/safetensors.hpp"
#include "io/file_bytes.hpp"
#include "io/safetensors_header.hpp"
#include "io/source.hpp"

namespace attn::io {
namespace {

constexpr std::size_t kLengthBytes = 8;

// Why a header length is absurd, when the first bytes say what the file is instead.
std::string what_the_file_is(std::span<const std::uint8_t> bytes) {
  const auto starts_with = [&](std::string_view magic) {
    return bytes.size() >= magic.size() &&
           std::equal(magic.begin(), magic.end(), bytes.begin(),
                      [](char a, std::uint8_t b) { return static_cast<std::uint8_t>(a) == b; });
  };
  if (starts_with("PK\x03\x04"))
    return " (the file is a zip archive, as torch.save writes: load it in PyTorch and save the "
           "state_dict with safetensors.torch.save_file)";
  if (starts_with("\x93NUMPY")) return " (the file is a .npy array: read it with read_npy)";
  return "";
}

SafetensorsFile parse(std::span<const std::uint8_t> bytes, const Source& source) {
  if (bytes.empty()) source.fail("not a safetensors file: the file is empty");
  if (bytes.size() < kLengthBytes)
    source.fail(fmt::format("the file ends after {} bytes, inside the 8-byte header length",
                            bytes.size()));
  std::uint64_t length = 0;
  for (std::size_t i = kLengthBytes; i-- > 0;) length = length << 8 | bytes[i];
  if (length > kMaxSafetensorsHeader)
    source.fail(fmt::format("header length {} is above the {} bytes a safetensors header may "
                            "have{}",
                            length, kMaxSafetensorsHeader, what_the_file_is(bytes)));
  const std::size_t after_length = bytes.size() - kLengthBytes;
  if (length > after_length)
    source.fail(fmt::format("header length {} goes beyond the end of the file: {} bytes "
                            "follow the 8-byte length",
                            length, after_length));
  const std::string_view text(reinterpret_cast<const char*>(bytes.data()) + kLengthBytes, length);
  const std::span<const std::uint8_t> data = bytes.subspan(kLengthBytes + length);
  const SafetensorsHeader header = parse_safetensors_header(text, data.size(), source);

  // Each entry's range lies within `data` and matches its shape (checked above), so
  // every tensor allocated here is backed by bytes present in the file.
  SafetensorsFile file;
  file.metadata = header.metadata;
  file.tensors.reserve(header.entries.size());
  for (const SafetensorsEntry& e : header.entries) {
    Tensor t = Tensor::zeros(e.shape);
    decode_elements(e.type, data.data() + e.begin, static_cast<std::size_t>(e.numel), t.data());
    file.tensors.emplace_back(e.name, std::move(t));
  }
  return file;
}

}  // namespace

const Tensor* SafetensorsFile::find(std::string_view name) const {
  for (const auto& [n, t] : tensors)
    if (n == name) return &t;
  return nullptr;
}

const Tensor& SafetensorsFile::at(std::string_view name) const {
  if (const Tensor* t = find(name)) return *t;
  constexpr std::size_t kShown = 20;
  std::string names;
  for (std::size_t i = 0; i < std::min(tensors.size(), kShown); ++i)
    names += (i > 0 ? ", '" : "'") + printable(tensors[i].first) + "'";
  if (tensors.size() > kShown) names += fmt::format(" and {} more", tensors.size() - kShown);
  throw Error(fmt::format("[SafetensorsFile::at] no tensor '{}'; the file has {}",
                          printable(name), tensors.empty() ? "none" : names));
}

SafetensorsFile load_safetensors(const std::string& path) {
  const Source source{"load_safetensors", path};
  const FileBytes file(path, source);
  return parse(file.bytes(), source);
}

SafetensorsFile parse_safetensors(std::span<const std::uint8_t> bytes, std::string_view source) {
  return parse(bytes, Source{"parse_safetensors", source});
}

}  // namespace attn::io
