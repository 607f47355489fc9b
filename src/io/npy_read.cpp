// read_npy and parse_npy: the preamble (magic, version, header length), then the
// header and dtype, then the data, each length checked against the size of the input
// before anything is read or allocated. parse_npy has all the bytes; read_npy reads
// a regular file's header, then its data in pieces, converting as it goes.
//
// Layout of a .npy file (numpy.lib.format):
//   "\x93NUMPY" major minor   8 bytes
//   header length             uint16 LE (version 1.0) or uint32 LE (2.0 and 3.0)
//   header                    the dict literal, ASCII (1.0, 2.0) or UTF-8 (3.0)
//   data                      numel elements of the dtype, C or Fortran order
#include <fmt/format.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "attn/io.hpp"
#include "io/npy_dtype.hpp"
#include "io/npy_header.hpp"
#include "io/source.hpp"

namespace attn::io {
namespace {

constexpr std::uint8_t kMagic[] = {0x93, 'N', 'U', 'M', 'P', 'Y'};
constexpr std::size_t kVersionEnd = std::size(kMagic) + 2;  // magic, major, minor

struct CloseFile {
  void operator()(std::FILE* f) const { std::fclose(f); }
};
using FilePtr = std::unique_ptr<std::FILE, CloseFile>;

// Elements of `shape`: 0 when any size is 0, else the product, which must fit int64.
std::int64_t element_count(const Shape& shape, const Source& source) {
  if (std::find(shape.begin(), shape.end(), 0) != shape.end()) return 0;
  std::int64_t n = 1;
  for (std::int64_t s : shape)
    if (__builtin_mul_overflow(n, s, &n))
      source.fail(fmt::format("shape {} has more elements than int64 can count",
                              shape_str(shape)));
  return n;
}

// Where the header ends (the data's offset), from the input's first bytes
// (`start`: at least min(total, 12) of them) and its total size in bytes.
struct Preamble {
  int major = 1;
  std::size_t header_offset = 0, header_length = 0;
  std::size_t data_offset() const { return header_offset + header_length; }
};

Preamble parse_preamble(std::span<const std::uint8_t> start, std::size_t total,
                        const Source& source) {
  if (total == 0) source.fail("not a .npy file: the file is empty");
  const std::size_t magic_seen = std::min(start.size(), std::size(kMagic));
  if (!std::equal(start.begin(), start.begin() + static_cast<std::ptrdiff_t>(magic_seen), kMagic))
    source.fail(fmt::format("not a .npy file: it starts with '{}', not '\\x93NUMPY'",
                            printable({reinterpret_cast<const char*>(start.data()), magic_seen})));
  if (total < kVersionEnd)
    source.fail(fmt::format("the file ends after {} bytes, inside the {}-byte magic and version",
                            total, kVersionEnd));

  Preamble p;
  p.major = start[6];
  const int minor = start[7];
  if (p.major < 1 || p.major > 3 || minor != 0)
    source.fail(fmt::format("unsupported .npy format version {}.{}; this reader knows 1.0, 2.0 "
                            "and 3.0",
                            p.major, minor));
  // Version 1.0 counts the header in 2 bytes, later versions in 4.
  const std::size_t length_bytes = p.major == 1 ? 2 : 4;
  p.header_offset = kVersionEnd + length_bytes;
  if (total < p.header_offset)
    source.fail(fmt::format("the file ends after {} bytes, inside the {}-byte preamble of a "
                            "version {}.0 file",
                            total, p.header_offset, p.major));
  for (std::size_t i = length_bytes; i-- > 0;)
    p.header_length = p.header_length << 8 | start[kVersionEnd + i];
  if (p.header_length > total - p.header_offset)
    source.fail(fmt::format("header length {} goes beyond the end of the file: {} bytes follow "
                            "the {}-byte preamble",
                            p.header_length, total - p.header_offset, p.header_offset));
  return p;
}

// What the header says, checked against the `total` bytes of the input.
struct Layout {
  NpyHeader header;
  ElementType dtype;
  std::int64_t numel = 0;
  std::size_t data_offset = 0, data_bytes = 0;
};

Layout parse_layout(const Preamble& preamble, std::string_view header_text, std::size_t total,
                    const Source& source) {
  Layout l;
  l.header = parse_npy_header(header_text, preamble.major, source);
  l.dtype = parse_npy_dtype(l.header.descr, source);
  l.numel = element_count(l.header.shape, source);
  if (__builtin_mul_overflow(static_cast<std::uint64_t>(l.numel), l.dtype.size, &l.data_bytes))
    source.fail(fmt::format("shape {} of {} needs more bytes than size_t can count",
                            shape_str(l.header.shape), l.header.descr));
  l.data_offset = preamble.data_offset();
  const std::size_t available = total - l.data_offset;
  if (available != l.data_bytes)
    source.fail(fmt::format("has {} bytes of data, shape {} of {} needs {}{}", available,
                            shape_str(l.header.shape), l.header.descr, l.data_bytes,
                            available > l.data_bytes
                                ? ": the bytes after the data mean the header is wrong"
                                : ""));
  return l;
}

// Fills a float32 tensor of the header's shape from the data, handed over in
// pieces by `read_data(out, count)`, which converts the next `count` elements into
// `out`. The data size is checked, so the tensor's size is safe to allocate.
template <class ReadData>
Tensor decode(const Layout& l, ReadData&& read_data) {
  if (!l.header.fortran_order || l.header.shape.size() < 2) {
    Tensor t = Tensor::zeros(l.header.shape);
    read_data(t.data(), static_cast<std::size_t>(l.numel));
    return t;
  }
  // Fortran order is C order of the reversed shape: read that, then copy the
  // transposed view into a row-major tensor.
  const Shape reversed(l.header.shape.rbegin(), l.header.shape.rend());
  Tensor column_major = Tensor::zeros(reversed);
  read_data(column_major.data(), static_cast<std::size_t>(l.numel));
  std::vector<std::int64_t> order(reversed.size());
  for (std::size_t d = 0; d < order.size(); ++d)
    order[d] = static_cast<std::int64_t>(order.size() - 1 - d);
  return column_major.permute(order).clone();
}

Tensor parse(std::span<const std::uint8_t> bytes, const Source& source) {
  const Preamble preamble = parse_preamble(bytes.first(std::min<std::size_t>(bytes.size(), 12)),
                                           bytes.size(), source);
  const std::string_view text(reinterpret_cast<const char*>(bytes.data()) + preamble.header_offset,
                              preamble.header_length);
  const Layout l = parse_layout(preamble, text, bytes.size(), source);
  return decode(l, [&](float* out, std::size_t count) {
    decode_elements(l.dtype, bytes.data() + l.data_offset, count, out);
  });
}

// Reads `n` bytes at the file's position into `out`, or fails naming what it read.
void read_exactly(std::FILE* file, void* out, std::size_t n, std::string_view what,
                  const Source& source) {
  errno = 0;
  const std::size_t got = std::fread(out, 1, n, file);
  if (got != n)
    source.fail(fmt::format("reading the {} stopped after {} of {} bytes: {}", what, got, n,
                            std::ferror(file) ? std::strerror(errno) : "the file shrank"));
}

// A file of `size` bytes, read header first, then converted in 1 MiB pieces straight
// into the tensor: the peak memory is the tensor, not the file plus the tensor.
Tensor read_regular_file(std::FILE* file, std::size_t size, const Source& source) {
  std::uint8_t start[12] = {};
  const std::size_t start_bytes = std::min(size, sizeof start);
  read_exactly(file, start, start_bytes, "preamble", source);
  const Preamble preamble = parse_preamble({start, start_bytes}, size, source);
  std::string text(preamble.header_length, '\0');
  // The header's first bytes may already be in `start` (after a 10-byte preamble).
  const std::size_t in_start = std::min(preamble.header_length,
                                        start_bytes - std::min(start_bytes, preamble.header_offset));
  std::copy_n(start + preamble.header_offset, in_start, text.begin());
  read_exactly(file, text.data() + in_start, text.size() - in_start, "header", source);
  const Layout l = parse_layout(preamble, text, size, source);
  // (A header shorter than 2 bytes never parses; this keeps the position right anyway.)
  if (std::fseek(file, static_cast<long>(l.data_offset), SEEK_SET) != 0)
    source.fail(fmt::format("cannot seek to the data at byte {}: {}", l.data_offset,
                            std::strerror(errno)));
  return decode(l, [&](float* out, std::size_t count) {
    constexpr std::size_t kPieceBytes = std::size_t{1} << 20;
    const std::size_t per_piece = std::max<std::size_t>(1, kPieceBytes / l.dtype.size);
    std::vector<std::uint8_t> piece(std::min(count, per_piece) * l.dtype.size);
    for (std::size_t done = 0; done < count;) {
      const std::size_t n = std::min(per_piece, count - done);
      read_exactly(file, piece.data(), n * l.dtype.size, "data", source);
      decode_elements(l.dtype, piece.data(), n, out + done);
      done += n;
    }
  });
}

// Anything else (a pipe, /proc): read to the end, then parse the bytes.
Tensor read_stream(std::FILE* file, const Source& source) {
  constexpr std::size_t kChunk = std::size_t{1} << 20;
  std::vector<std::uint8_t> bytes;
  while (true) {
    const std::size_t old = bytes.size();
    bytes.resize(old + kChunk);
    errno = 0;
    const std::size_t got = std::fread(bytes.data() + old, 1, kChunk, file);
    bytes.resize(old + got);
    if (got < kChunk) break;
  }
  if (std::ferror(file)) source.fail(fmt::format("cannot read the file: {}", std::strerror(errno)));
  return parse(bytes, source);
}

}  // namespace

Tensor read_npy(const std::string& path) {
  const Source source{"read_npy", path};
  errno = 0;
  FilePtr file(std::fopen(path.c_str(), "rb"));
  if (!file) source.fail(fmt::format("cannot open the file: {}", std::strerror(errno)));
  struct stat info {};
  if (::fstat(::fileno(file.get()), &info) == 0 && S_ISREG(info.st_mode))
    return read_regular_file(file.get(), static_cast<std::size_t>(info.st_size), source);
  return read_stream(file.get(), source);
}

Tensor parse_npy(std::span<const std::uint8_t> bytes, std::string_view source) {
  return parse(bytes, Source{"parse_npy", source});
}

}  // namespace attn::io
