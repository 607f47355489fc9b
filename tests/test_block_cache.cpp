// The block cache behind tensor storage (attn/memory.hpp, block_cache.hpp): a
// large block that its owner dropped serves the next request of its size class,
// two blocks in use never share memory, small blocks and blocks larger than the
// cache are not kept, the cache never holds more than its bound, and
// release_cached_memory empties it. Each test runs in its own process (ctest).
#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <memory>

#include "attn/memory.hpp"
#include "attn/tensor.hpp"
#include "block_cache.hpp"

namespace {

using attn::cached_memory_bytes;
using attn::release_cached_memory;
using attn::detail::allocate_block;
using attn::detail::kCacheBytes;
using attn::detail::kCachedBlockMin;
using attn::detail::kCachedBlockStep;

constexpr std::size_t kLarge = 3 * kCachedBlockMin + 100;  // rounds up to a multiple of the step
constexpr std::size_t kLargeClass = (kLarge + kCachedBlockStep - 1) / kCachedBlockStep * kCachedBlockStep;

TEST(BlockCache, ADroppedBlockServesTheNextOfItsSize) {
  release_cached_memory();
  void* first = nullptr;
  {
    std::shared_ptr<void> a = allocate_block(kLarge);
    first = a.get();
    static_cast<char*>(a.get())[kLarge - 1] = 1;  // all of it is there
  }
  EXPECT_EQ(cached_memory_bytes(), kLargeClass);
  const std::shared_ptr<void> b = allocate_block(kLarge - 50);  // the same class
  EXPECT_EQ(b.get(), first);
  EXPECT_EQ(cached_memory_bytes(), 0U);
  const std::shared_ptr<void> c = allocate_block(kLarge + kCachedBlockStep);  // another class
  EXPECT_NE(c.get(), first);
}

TEST(BlockCache, BlocksInUseHaveTheirOwnMemory) {
  const std::shared_ptr<void> a = allocate_block(kLarge), b = allocate_block(kLarge);
  EXPECT_NE(a.get(), b.get());
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(a.get()) % attn::detail::kBlockAlignment, 0U);
}

TEST(BlockCache, SmallAndOversizedBlocksAreNotKept) {
  release_cached_memory();
  { const std::shared_ptr<void> small = allocate_block(kCachedBlockMin / 2); }
  { const std::shared_ptr<void> huge = allocate_block(kCacheBytes + 1); }  // its pages are never touched
  EXPECT_EQ(cached_memory_bytes(), 0U);
}

TEST(BlockCache, HoldsNoMoreThanItsBoundAndReleasesAll) {
  release_cached_memory();
  const std::size_t block = kCacheBytes / 3 + kCachedBlockStep;  // three do not fit
  {
    const std::shared_ptr<void> a = allocate_block(block), b = allocate_block(block), c = allocate_block(block);
  }
  EXPECT_LE(cached_memory_bytes(), kCacheBytes);
  EXPECT_GT(cached_memory_bytes(), 0U);
  release_cached_memory();
  EXPECT_EQ(cached_memory_bytes(), 0U);
}

TEST(BlockCache, ReusedTensorStorageStartsAtZero) {
  release_cached_memory();
  const attn::Shape shape{1, 8, 256, 128};  // 1 MiB
  {
    attn::Tensor t = attn::Tensor::full(shape, 7.0f);
  }
  EXPECT_GT(cached_memory_bytes(), 0U);
  const attn::Tensor z = attn::Tensor::zeros(shape);
  EXPECT_EQ(cached_memory_bytes(), 0U);  // it took the block back
  for (const float x : z.to_vector()) ASSERT_EQ(x, 0.0f);
}

#if defined(__SANITIZE_ADDRESS__)
// Under AddressSanitizer a kept block is poisoned: reading a dropped block is
// reported, as reading freed memory would be.
TEST(BlockCacheDeathTest, ReadingADroppedBlockIsReported) {
  release_cached_memory();
  volatile char* dropped = nullptr;
  {
    const std::shared_ptr<void> a = allocate_block(kLarge);
    dropped = static_cast<char*>(a.get());
    dropped[0] = 1;
  }
  EXPECT_DEATH(static_cast<void>(dropped[10]), "use-after-poison");
}
#endif

}  // namespace
