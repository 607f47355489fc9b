// What every benchmark of bench/ and `attn bench` measures with: medians, the peak
// resident memory, a cache flush between timed runs, and the machine.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace attn::bench {

// The median of `samples` (the mean of the middle two for an even count); NaN when
// there are none.
double median(std::vector<double> samples);

// The process's peak resident memory so far, in bytes (getrusage's ru_maxrss). It
// only grows: measure one step in a fresh (forked) process, as peak_rss_bytes()
// after it minus current_rss_bytes() before it.
std::int64_t peak_rss_bytes();
// The resident memory now, in bytes (/proc/self/statm); 0 if it cannot be read.
std::int64_t current_rss_bytes();

// Writes and reads a buffer larger than the last-level cache, so that the next timed
// run starts from memory, as a call inside a model would.
class CacheFlusher {
 public:
  explicit CacheFlusher(std::int64_t bytes = std::int64_t{64} << 20);
  void flush();

 private:
  std::vector<char> buffer_;
  char sink_ = 0;
};

// The machine, for the report: the CPU model of /proc/cpuinfo ("unknown" if none)
// and the cores the process may run on.
std::string cpu_model();
int available_cores();

// The OpenBLAS core type that OPENBLAS_CORETYPE forces, or "" when it is not set.
// OpenBLAS reads it when it loads: a set value pins its kernels for the whole process.
std::string openblas_coretype_env();

}  // namespace attn::bench
