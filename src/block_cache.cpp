// A fresh block of megabytes is pages the operating system maps and zeroes at
// their first touch, a trap per 4 KiB: measured on Zen 3 (a virtual machine), 3 us
// a page, 9 ms for 12 MiB that took 0.9 ms to write again. glibc's malloc returns
// blocks that size to the system when they are freed, so that a call repeated at
// one shape paid for its pages every time: the fused backward at B=1, H=8,
// L=2048, D=64, causal (80 to 100 ms on 2 threads) took 3072 page faults a call,
// its 12 MiB of gradients, and 0 with this cache.
#include "block_cache.hpp"

#include <algorithm>
#include <cstdlib>
#include <list>
#include <mutex>
#include <new>

#include "attn/memory.hpp"

// Kept blocks are poisoned for AddressSanitizer, so that a use of one after its
// owner dropped it is reported (as a use after poison) instead of going unseen;
// the macros do nothing in other builds.
#if __has_include(<sanitizer/asan_interface.h>)
#include <sanitizer/asan_interface.h>
#else
#define ASAN_POISON_MEMORY_REGION(addr, size) ((void)(addr), (void)(size))
#define ASAN_UNPOISON_MEMORY_REGION(addr, size) ((void)(addr), (void)(size))
#endif

namespace attn::detail {
namespace {

struct Block {
  void* memory;
  std::size_t bytes;
};

class BlockCache {
 public:
  // A kept block of exactly `bytes`, or nullptr.
  void* take(std::size_t bytes) {
    const std::lock_guard<std::mutex> lock(mutex_);
    for (auto it = kept_.begin(); it != kept_.end(); ++it)
      if (it->bytes == bytes) {
        void* memory = it->memory;
        kept_bytes_ -= bytes;
        kept_.erase(it);
        ASAN_UNPOISON_MEMORY_REGION(memory, bytes);
        return memory;
      }
    return nullptr;
  }

  // Keeps the block, the oldest going first when there is no room; frees it
  // when it alone is more than the cache holds.
  void give_back(void* memory, std::size_t bytes) {
    std::list<Block> freed;
    {
      const std::lock_guard<std::mutex> lock(mutex_);
      if (bytes > kCacheBytes) {
        freed.push_back({memory, bytes});
      } else {
        ASAN_POISON_MEMORY_REGION(memory, bytes);
        kept_.push_back({memory, bytes});
        kept_bytes_ += bytes;
        while (kept_bytes_ > kCacheBytes) {
          kept_bytes_ -= kept_.front().bytes;
          freed.splice(freed.end(), kept_, kept_.begin());
        }
      }
    }
    free_all(freed);
  }

  std::size_t kept_bytes() {
    const std::lock_guard<std::mutex> lock(mutex_);
    return kept_bytes_;
  }

  void release() {
    std::list<Block> freed;
    {
      const std::lock_guard<std::mutex> lock(mutex_);
      freed.swap(kept_);
      kept_bytes_ = 0;
    }
    free_all(freed);
  }

 private:
  static void free_all(const std::list<Block>& blocks) {
    for (const Block& b : blocks) {
      ASAN_UNPOISON_MEMORY_REGION(b.memory, b.bytes);
      std::free(b.memory);
    }
  }

  std::mutex mutex_;
  std::list<Block> kept_;  // oldest first
  std::size_t kept_bytes_ = 0;
};

// Never destroyed: blocks may be dropped by static tensors after main returns.
BlockCache& cache() {
  static auto* c = new BlockCache;  // NOLINT(cppcoreguidelines-owning-memory)
  return *c;
}

std::size_t round_up(std::size_t x, std::size_t m) { return (x + m - 1) / m * m; }

void* allocate(std::size_t bytes) {
  void* p = std::aligned_alloc(kBlockAlignment, bytes);
  if (p == nullptr) throw std::bad_alloc();
  return p;
}

}  // namespace

std::shared_ptr<void> allocate_block(std::size_t bytes) {
  // A multiple of the alignment (aligned_alloc's rule), never zero.
  std::size_t size = round_up(std::max<std::size_t>(bytes, 1), kBlockAlignment);
  if (size < kCachedBlockMin) return std::shared_ptr<void>(allocate(size), [](void* p) { std::free(p); });
  size = round_up(size, kCachedBlockStep);
  void* p = cache().take(size);
  if (p == nullptr) p = allocate(size);
  return std::shared_ptr<void>(p, [size](void* q) { cache().give_back(q, size); });
}

}  // namespace attn::detail

namespace attn {

std::size_t cached_memory_bytes() { return detail::cache().kept_bytes(); }

void release_cached_memory() { detail::cache().release(); }

}  // namespace attn
