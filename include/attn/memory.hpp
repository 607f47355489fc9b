// The memory attn keeps for reuse. Blocks of 256 KiB or more (tensor storage, and
// the fused kernels' scratch) go, when their last owner drops them, to a
// cache of at most 256 MiB, from which the next block of the same size is taken:
// a fresh block comes from pages the operating system maps and zeroes at their
// first touch, which costs about as much as writing them ten times over. A
// training step or a forward run again at the same shapes then reuses the memory
// of the last one. The oldest blocks leave first when the cache is full.
#pragma once

#include <cstddef>

namespace attn {

// Bytes held in the cache now: blocks no tensor or kernel owns.
std::size_t cached_memory_bytes();

// Frees every block in the cache (blocks in use are not touched).
void release_cached_memory();

}  // namespace attn
