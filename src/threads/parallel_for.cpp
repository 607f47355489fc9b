// parallel_for on OpenMP: one parallel region per call, tasks handed out
// dynamically, one at a time.
#include "threads/parallel_for.hpp"

#include <omp.h>

#include <atomic>
#include <exception>
#include <mutex>
#include <string>

#include "attn/error.hpp"
#include "attn/threads.hpp"
#include "kernels/cpu/linear_blas.hpp"

namespace attn {

namespace {

// The count set, 0 for OpenMP's default. One for the process, as torch's is:
// omp_set_num_threads would set only the calling thread's, so that a program
// calling attn from a thread of its own would find the default there.
std::atomic<int> requested_threads{0};

}  // namespace

void set_num_threads(int n) {
  if (n < 1) throw Error("[set_num_threads] n must be at least 1, got " + std::to_string(n));
  requested_threads.store(n);
  detail::set_blas_threads(n);  // the projections' sgemm
}

int num_threads() {
  const int n = requested_threads.load();
  return n > 0 ? n : omp_get_max_threads();
}

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
