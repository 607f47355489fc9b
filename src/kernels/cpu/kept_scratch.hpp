// Scratch that outlives a call, for buffers of megabytes that a kernel fills
// afresh at every call (the fused backward's partial dQ). A fresh allocation of
// that size comes from new pages, and the first touch of each 4 KiB page traps
// into the operating system, which maps and zeroes it. Measured on Zen 3 (B=1,
// H=8, L=2048): the backward's dQ products ran a fifth slower into fresh pages
// than into the buffer of the call before (1 thread, time-stamp counter), and the
// whole backward 3 to 4% slower (2 threads, medians of 11 alternated runs: D=128
// 129.5 against 134.7 GFLOP/s, D=64 causal 109.4 against 112.3, D=64 L=4096
// 130.7 against 135.4).
//
// A lease takes the smallest kept buffer that is large enough, or allocates one,
// and gives it back when it ends. Buffers go back to the store only while the
// store holds at most kKeptScratchBytes, so that what a program keeps after its
// calls is bounded: at the lengths where a larger buffer would be kept, the work
// grows as L^2 and the buffer as L, and its pages cost a small share.
#pragma once

#include <cstddef>

#include "hwy/aligned_allocator.h"

namespace attn::detail {

inline constexpr std::size_t kKeptScratchBytes = std::size_t{64} << 20;

class KeptScratch {
 public:
  explicit KeptScratch(std::size_t floats);
  ~KeptScratch();
  KeptScratch(const KeptScratch&) = delete;
  KeptScratch& operator=(const KeptScratch&) = delete;

  float* get() const { return memory_.get(); }

 private:
  hwy::AlignedFreeUniquePtr<float[]> memory_;
  std::size_t floats_ = 0;
};

// The bytes the store holds now, between leases.
std::size_t kept_scratch_bytes();

}  // namespace attn::detail
