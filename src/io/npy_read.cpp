// read_npy and parse_npy: the preamble (magic, version, header length), then the
// header and dtype, then the data, each length checked against the bytes that are
// really there before anything is read or allocated.
//
// Layout of a .npy file (numpy.lib.format):
//   "\x93NUMPY" major minor   8 bytes
//   header length             uint16 LE (version 1.0) or uint32 LE (2.0 and 3.0)
//   header                    the dict literal, ASCII (1.0, 2.0) or UTF-8 (3.0)
//   data                      numel elements of the dtype, C or Fortran order
#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

#include "attn/io.hpp"
#include "io/npy_dtype.hpp"
#include "io/npy_header.hpp"
#include "io/npy_source.hpp"

namespace attn::io {
namespace {

constexpr std::uint8_t kMagic[] = {0x93, 'N', 'U', 'M', 'P', 'Y'};
constexpr std::size_t kVersionEnd = std::size(kMagic) + 2;  // magic, major, minor

struct CloseFile {
  void operator()(std::FILE* f) const { std::fclose(f); }
};

std::vector<std::uint8_t> read_file(const std::string& path, const NpySource& source) {
  errno = 0;
  std::unique_ptr<std::FILE, CloseFile> file(std::fopen(path.c_str(), "rb"));
  if (!file) source.fail(fmt::format("cannot open the file: {}", std::strerror(errno)));
  // Read to the end rather than trusting a size from stat: pipes and /proc have none.
  constexpr std::size_t kChunk = std::size_t{1} << 20;
  std::vector<std::uint8_t> bytes;
  while (true) {
    const std::size_t old = bytes.size();
    bytes.resize(old + kChunk);
    const std::size_t got = std::fread(bytes.data() + old, 1, kChunk, file.get());
    bytes.resize(old + got);
    if (got < kChunk) break;
  }
  if (std::ferror(file.get()))
    source.fail(fmt::format("cannot read the file: {}", std::strerror(errno)));
  return bytes;
}

// Elements of `shape`: 0 when any size is 0, else the product, which must fit int64.
std::int64_t element_count(const Shape& shape, const NpySource& source) {
  if (std::find(shape.begin(), shape.end(), 0) != shape.end()) return 0;
  std::int64_t n = 1;
  for (std::int64_t s : shape)
    if (__builtin_mul_overflow(n, s, &n))
      source.fail(fmt::format("shape {} has more elements than int64 can count",
                              shape_str(shape)));
  return n;
}

Tensor parse(std::span<const std::uint8_t> bytes, const NpySource& source) {
  if (bytes.empty()) source.fail("not a .npy file: the file is empty");
  const std::size_t magic_seen = std::min(bytes.size(), std::size(kMagic));
  if (!std::equal(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(magic_seen), kMagic))
    source.fail(fmt::format("not a .npy file: it starts with '{}', not '\\x93NUMPY'",
                            printable({reinterpret_cast<const char*>(bytes.data()), magic_seen})));
  if (bytes.size() < kVersionEnd)
    source.fail(fmt::format("the file ends after {} bytes, inside the {}-byte magic and version",
                            bytes.size(), kVersionEnd));

  const int major = bytes[6], minor = bytes[7];
  if (major < 1 || major > 3 || minor != 0)
    source.fail(fmt::format("unsupported .npy format version {}.{}; this reader knows 1.0, 2.0 "
                            "and 3.0",
                            major, minor));
  // Version 1.0 counts the header in 2 bytes, later versions in 4.
  const std::size_t length_bytes = major == 1 ? 2 : 4;
  const std::size_t preamble = kVersionEnd + length_bytes;
  if (bytes.size() < preamble)
    source.fail(fmt::format("the file ends after {} bytes, inside the {}-byte preamble of a "
                            "version {}.0 file",
                            bytes.size(), preamble, major));
  std::size_t header_length = 0;
  for (std::size_t i = length_bytes; i-- > 0;)
    header_length = header_length << 8 | bytes[kVersionEnd + i];
  if (header_length > bytes.size() - preamble)
    source.fail(fmt::format("header length {} goes beyond the end of the file: {} bytes follow "
                            "the {}-byte preamble",
                            header_length, bytes.size() - preamble, preamble));

  const std::string_view text(reinterpret_cast<const char*>(bytes.data()) + preamble,
                              header_length);
  const NpyHeader header = parse_npy_header(text, major, source);
  const NpyDtype dtype = parse_npy_dtype(header.descr, source);

  const std::int64_t numel = element_count(header.shape, source);
  std::size_t needed = 0;
  if (__builtin_mul_overflow(static_cast<std::uint64_t>(numel), dtype.size, &needed))
    source.fail(fmt::format("shape {} of {} needs more bytes than size_t can count",
                            shape_str(header.shape), header.descr));
  const std::size_t data_offset = preamble + header_length;
  const std::size_t available = bytes.size() - data_offset;
  if (available != needed)
    source.fail(fmt::format("has {} bytes of data, shape {} of {} needs {}{}", available,
                            shape_str(header.shape), header.descr, needed,
                            available > needed
                                ? ": the bytes after the data mean the header is wrong"
                                : ""));

  // `needed` fits in memory, so the float32 tensor's size is safe to allocate.
  if (!header.fortran_order || header.shape.size() < 2) {
    Tensor t = Tensor::zeros(header.shape);
    decode_npy_data(dtype, bytes.data() + data_offset, static_cast<std::size_t>(numel), t.data());
    return t;
  }
  // Fortran order is C order of the reversed shape: read that, then copy the
  // transposed view into a row-major tensor.
  const Shape reversed(header.shape.rbegin(), header.shape.rend());
  Tensor column_major = Tensor::zeros(reversed);
  decode_npy_data(dtype, bytes.data() + data_offset, static_cast<std::size_t>(numel),
                  column_major.data());
  std::vector<std::int64_t> order(reversed.size());
  for (std::size_t d = 0; d < order.size(); ++d)
    order[d] = static_cast<std::int64_t>(order.size() - 1 - d);
  return column_major.permute(order).clone();
}

}  // namespace

Tensor read_npy(const std::string& path) {
  const NpySource source{"read_npy", path};
  const std::vector<std::uint8_t> bytes = read_file(path, source);
  return parse(bytes, source);
}

Tensor parse_npy(std::span<const std::uint8_t> bytes, std::string_view source) {
  return parse(bytes, NpySource{"parse_npy", source});
}

}  // namespace attn::io
