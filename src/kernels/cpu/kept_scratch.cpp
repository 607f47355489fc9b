#include "kernels/cpu/kept_scratch.hpp"

#include <algorithm>
#include <mutex>
#include <utility>
#include <vector>

namespace attn::detail {
namespace {

struct KeptBuffer {
  hwy::AlignedFreeUniquePtr<float[]> memory;
  std::size_t floats = 0;
};

struct Store {
  std::mutex mutex;
  std::vector<KeptBuffer> buffers;  // not leased now
  std::size_t bytes = 0;
};

Store& store() {
  static Store s;  // NOLINT: one per process, as the pages it saves are
  return s;
}

}  // namespace

KeptScratch::KeptScratch(std::size_t floats) : floats_(std::max<std::size_t>(floats, 1)) {
  {
    Store& s = store();
    const std::lock_guard<std::mutex> lock(s.mutex);
    auto best = s.buffers.end();
    for (auto it = s.buffers.begin(); it != s.buffers.end(); ++it)
      if (it->floats >= floats_ && (best == s.buffers.end() || it->floats < best->floats)) best = it;
    if (best != s.buffers.end()) {
      memory_ = std::move(best->memory);
      floats_ = best->floats;
      s.bytes -= floats_ * sizeof(float);
      s.buffers.erase(best);
      return;
    }
  }
  memory_ = hwy::AllocateAligned<float>(floats_);
}

KeptScratch::~KeptScratch() {
  if (memory_ == nullptr) return;
  Store& s = store();
  const std::lock_guard<std::mutex> lock(s.mutex);
  const std::size_t bytes = floats_ * sizeof(float);
  if (s.bytes + bytes > kKeptScratchBytes) return;  // freed with this lease
  s.buffers.push_back({std::move(memory_), floats_});
  s.bytes += bytes;
}

std::size_t kept_scratch_bytes() {
  Store& s = store();
  const std::lock_guard<std::mutex> lock(s.mutex);
  return s.bytes;
}

}  // namespace attn::detail
