// serialize_npy and write_npy: the bytes np.save writes for a float32 array (numpy
// 1.23 and later), so that a file written here and one written by numpy are equal.
#include <fmt/format.h>

#include <bit>

#include "attn/io.hpp"
#include "io/file_bytes.hpp"
#include "io/source.hpp"

namespace attn::io {
namespace {

constexpr std::uint8_t kMagic[] = {0x93, 'N', 'U', 'M', 'P', 'Y'};
// numpy pads the header so that the data starts at a multiple of 64 bytes (what
// memory mapping of any dtype needs), ...
constexpr std::size_t kAlign = 64;
// ... and leaves room for the growing axis to reach this many digits, so that
// appending rows can rewrite the header in place.
constexpr std::size_t kGrowthAxisDigits = 21;
constexpr std::size_t kMaxVersion1Header = 0xFFFF;

// A Python tuple: "()", "(3,)", "(2, 3)".
std::string python_tuple(const Shape& shape) {
  if (shape.size() == 1) return fmt::format("({},)", shape[0]);
  return shape_str(shape);
}

std::vector<std::uint8_t> serialize(const Tensor& t, const Source& source) {
  if (!t.defined()) source.fail("the tensor is undefined (no shape, no storage)");
  std::string header =
      fmt::format("{{'descr': '<f4', 'fortran_order': False, 'shape': {}, }}", python_tuple(t.shape()));
  if (!t.shape().empty())
    header.append(kGrowthAxisDigits - std::to_string(t.shape()[0]).size(), ' ');

  // Version 1.0 unless the header outgrows its 2-byte length (thousands of dims).
  int major = 1;
  std::size_t length_bytes = 2;
  std::size_t padded = 0;  // header, spaces and '\n'
  for (;;) {
    const std::size_t preamble = std::size(kMagic) + 2 + length_bytes;
    const std::size_t unpadded = header.size() + 1;  // with the final '\n'
    padded = unpadded + kAlign - (preamble + unpadded) % kAlign;
    if (major == 2 || padded <= kMaxVersion1Header) break;
    major = 2;
    length_bytes = 4;
  }
  header.append(padded - 1 - header.size(), ' ');
  header += '\n';

  std::vector<std::uint8_t> bytes(kMagic, kMagic + std::size(kMagic));
  bytes.push_back(static_cast<std::uint8_t>(major));
  bytes.push_back(0);
  for (std::size_t i = 0; i < length_bytes; ++i)
    bytes.push_back(static_cast<std::uint8_t>(padded >> (8 * i)));
  bytes.insert(bytes.end(), header.begin(), header.end());
  bytes.reserve(bytes.size() + static_cast<std::size_t>(t.numel()) * sizeof(float));
  // for_each walks the view in logical (row-major) order, whatever its strides.
  t.for_each([&bytes](float& x) {
    const auto bits = std::bit_cast<std::uint32_t>(x);
    for (int i = 0; i < 4; ++i) bytes.push_back(static_cast<std::uint8_t>(bits >> (8 * i)));
  });
  return bytes;
}

}  // namespace

std::vector<std::uint8_t> serialize_npy(const Tensor& t) {
  return serialize(t, Source{"serialize_npy", "tensor"});
}

void write_npy(const std::string& path, const Tensor& t) {
  const Source source{"write_npy", path};
  write_file(path, serialize(t, source), source);
}

}  // namespace attn::io
