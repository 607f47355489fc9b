// FileBytes (mmap, or read() for what cannot be mapped) and write_file.
#include "io/file_bytes.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

namespace attn::io {
namespace {

// Closes the descriptor on every path out of the constructor; the mapping outlives it.
struct Descriptor {
  int fd = -1;
  ~Descriptor() {
    if (fd >= 0) ::close(fd);
  }
};

struct CloseFile {
  void operator()(std::FILE* f) const { std::fclose(f); }
};

}  // namespace

FileBytes::FileBytes(const std::string& path, const Source& source) {
  Descriptor file;
  file.fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (file.fd < 0) source.fail(fmt::format("cannot open the file: {}", std::strerror(errno)));
  struct stat info {};
  if (::fstat(file.fd, &info) != 0)
    source.fail(fmt::format("cannot read the file's size: {}", std::strerror(errno)));
  if (S_ISDIR(info.st_mode)) source.fail(fmt::format("cannot read the file: {}", std::strerror(EISDIR)));
  // A regular file is mapped; an empty one has nothing to map (mmap refuses length 0).
  if (S_ISREG(info.st_mode)) {
    if (info.st_size == 0) return;
    map_size_ = static_cast<std::size_t>(info.st_size);
    void* map = ::mmap(nullptr, map_size_, PROT_READ, MAP_PRIVATE, file.fd, 0);
    if (map == MAP_FAILED)
      source.fail(fmt::format("cannot map the file's {} bytes: {}", map_size_, std::strerror(errno)));
    map_ = map;
    ::madvise(map_, map_size_, MADV_SEQUENTIAL);  // a hint: the readers go front to back
    return;
  }
  // Anything else (a pipe, /proc): read to the end.
  constexpr std::size_t kChunk = std::size_t{1} << 20;
  while (true) {
    const std::size_t old = buffer_.size();
    buffer_.resize(old + kChunk);
    const ssize_t got = ::read(file.fd, buffer_.data() + old, kChunk);
    if (got < 0 && errno == EINTR) {
      buffer_.resize(old);
      continue;
    }
    if (got < 0) source.fail(fmt::format("cannot read the file: {}", std::strerror(errno)));
    buffer_.resize(old + static_cast<std::size_t>(got));
    if (got == 0) break;
  }
}

FileBytes::~FileBytes() {
  if (map_ != nullptr) ::munmap(map_, map_size_);
}

std::span<const std::uint8_t> FileBytes::bytes() const {
  if (map_ != nullptr) return {static_cast<const std::uint8_t*>(map_), map_size_};
  return buffer_;
}

void write_file(const std::string& path, std::span<const std::uint8_t> bytes, const Source& source) {
  errno = 0;
  std::unique_ptr<std::FILE, CloseFile> file(std::fopen(path.c_str(), "wb"));
  if (!file) source.fail(fmt::format("cannot open the file for writing: {}", std::strerror(errno)));
  const bool written = std::fwrite(bytes.data(), 1, bytes.size(), file.get()) == bytes.size();
  const int write_errno = errno;
  const bool closed = std::fclose(file.release()) == 0;
  if (!written || !closed) {
    const int error = written ? errno : write_errno;
    std::remove(path.c_str());
    source.fail(fmt::format("cannot write the file: {}", std::strerror(error)));
  }
}

}  // namespace attn::io
