// parallel_for: the one way kernels run in parallel. Kernels never create threads.
//
//   parallel_for(n_tasks, [&](std::int64_t task, int worker) { ... });
//
// Each task runs exactly once, on one of num_threads() workers; `worker` in
// [0, num_threads()) indexes per-worker scratch. Tasks are handed out one at a time
// as workers free up (uneven tasks, such as the query blocks of a causal mask,
// balance themselves). Which worker runs a task must not change its result.
// An exception thrown by a task is rethrown here after every task has finished.
#pragma once

#include <cstdint>
#include <functional>

namespace attn::detail {

using TaskFn = std::function<void(std::int64_t task, int worker)>;

void parallel_for(std::int64_t n_tasks, const TaskFn& run_task);

}  // namespace attn::detail
