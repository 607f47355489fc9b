// Whole files in and out as bytes, for the readers and writers of attn::io.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "io/source.hpp"

namespace attn::io {

// The contents of the file at `path`, memory-mapped read-only when it is a regular
// file (a large weights file then costs page cache, not a buffer of its size), read
// into memory otherwise (pipes, /proc). The bytes live as long as the object.
// Throws attn::Error through `source` when the file cannot be opened or read.
class FileBytes {
 public:
  FileBytes(const std::string& path, const Source& source);
  ~FileBytes();
  FileBytes(const FileBytes&) = delete;
  FileBytes& operator=(const FileBytes&) = delete;

  std::span<const std::uint8_t> bytes() const;

 private:
  void* map_ = nullptr;  // the mapping, or null when the bytes are in buffer_
  std::size_t map_size_ = 0;
  std::vector<std::uint8_t> buffer_;
};

// Writes `bytes` to `path`, replacing the file. When writing fails, the partial file
// is removed (a truncated file would read back as an error at best) and attn::Error
// says why through `source`.
void write_file(const std::string& path, std::span<const std::uint8_t> bytes, const Source& source);

}  // namespace attn::io
