// The scratch that the fused backward keeps between calls (kept_scratch.hpp): a
// lease reuses the memory of one that ended, two leases at once never share, and
// the store keeps no more than its bound.
#include <gtest/gtest.h>

#include <cstddef>

#include "kernels/cpu/kept_scratch.hpp"

namespace {

using attn::detail::kept_scratch_bytes;
using attn::detail::KeptScratch;
using attn::detail::kKeptScratchBytes;

// Odd sizes: no kernel's buffer (rows of a multiple of 16 floats) has them.
constexpr std::size_t kFloats = 12345;

TEST(KeptScratch, ALeaseReusesTheMemoryOfOneThatEnded) {
  float* first = nullptr;
  {
    KeptScratch a(kFloats);
    first = a.get();
    a.get()[kFloats - 1] = 1.0f;  // all of it is there
  }
  KeptScratch b(kFloats);
  EXPECT_EQ(b.get(), first);
}

TEST(KeptScratch, LeasesAtOnceHaveTheirOwnMemory) {
  KeptScratch a(kFloats + 2);
  KeptScratch b(kFloats + 2);
  EXPECT_NE(a.get(), b.get());
  const std::size_t before = kept_scratch_bytes();
  {
    KeptScratch c(kFloats + 4);
  }
  EXPECT_EQ(kept_scratch_bytes(), before + (kFloats + 4) * sizeof(float));
  KeptScratch d(kFloats + 4);  // takes it back
  EXPECT_EQ(kept_scratch_bytes(), before);
}

TEST(KeptScratch, TheStoreKeepsNoMoreThanItsBound) {
  const std::size_t before = kept_scratch_bytes();
  {
    KeptScratch large(kKeptScratchBytes / sizeof(float) + 1);  // its pages are never touched
  }
  EXPECT_EQ(kept_scratch_bytes(), before);
  EXPECT_LE(kept_scratch_bytes(), kKeptScratchBytes);
}

}  // namespace
