// parallel_for on OpenMP: one parallel region per call, tasks handed out
// dynamically, one at a time.
#include "threads/parallel_for.hpp"

#include <omp.h>

#include <exception>
#include <mutex>
#include <string>

#include "attn/error.hpp"
#include "attn/threads.hpp"

namespace attn {

void set_num_threads(int n) {
  if (n < 1) throw Error("[set_num_threads] n must be at least 1, got " + std::to_string(n));
  omp_set_num_threads(n);
}

int num_threads() { return omp_get_max_threads(); }

namespace detail {

void parallel_for(std::int64_t n_tasks, const TaskFn& run_task) {
  if (n_tasks <= 0) return;
  const int workers = n_tasks == 1 ? 1 : num_threads();
  if (workers == 1) {  // the serial mode: no parallel region at all
    for (std::int64_t task = 0; task < n_tasks; ++task) run_task(task, 0);
    return;
  }
  std::exception_ptr first_error;
  std::mutex error_mutex;
#pragma omp parallel for schedule(dynamic, 1) num_threads(workers)
  for (std::int64_t task = 0; task < n_tasks; ++task) {
    try {
      run_task(task, omp_get_thread_num());
    } catch (...) {
      // OpenMP may not unwind out of the region: keep the first error, rethrow after.
      const std::lock_guard<std::mutex> lock(error_mutex);
      if (!first_error) first_error = std::current_exception();
    }
  }
  if (first_error) std::rethrow_exception(first_error);
}

}  // namespace detail
}  // namespace attn
