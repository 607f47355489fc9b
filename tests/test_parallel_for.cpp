// parallel_for and the thread count: every task runs once, workers index scratch,
// a task's exception reaches the caller, and bad counts are refused.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <stdexcept>
#include <thread>
#include <vector>

#include "attn/error.hpp"
#include "attn/threads.hpp"
#include "test_util.hpp"
#include "threads/parallel_for.hpp"

namespace {

using attn::detail::parallel_for;
using ::testing::HasSubstr;

// Restores the thread count a test changed.
class ThreadCount {
 public:
  explicit ThreadCount(int n) : saved_(attn::num_threads()) { attn::set_num_threads(n); }
  ~ThreadCount() { attn::set_num_threads(saved_); }

 private:
  int saved_;
};

TEST(ParallelFor, EveryTaskRunsOnceOnAValidWorker) {
  for (int threads : {1, 2, 3}) {
    const ThreadCount count(threads);
    for (std::int64_t n : {0, 1, 2, 7, 1000}) {
      std::vector<std::atomic<int>> runs(static_cast<std::size_t>(n));
      std::atomic<int> bad_worker{0};
      parallel_for(n, [&](std::int64_t task, int worker) {
        runs[static_cast<std::size_t>(task)]++;
        if (worker < 0 || worker >= attn::num_threads()) bad_worker++;
      });
      for (std::int64_t t = 0; t < n; ++t)
        EXPECT_EQ(runs[static_cast<std::size_t>(t)], 1) << threads << " threads, task " << t << " of " << n;
      EXPECT_EQ(bad_worker, 0);
    }
  }
}

TEST(ParallelFor, ATasksExceptionReachesTheCaller) {
  const ThreadCount count(2);
  std::atomic<int> ran{0};
  EXPECT_THROW(parallel_for(50,
                            [&](std::int64_t task, int) {
                              ran++;
                              if (task == 17) throw std::runtime_error("task 17");
                            }),
               std::runtime_error);
  EXPECT_EQ(ran, 50);  // the others still ran: no task is left half done
}

TEST(Threads, CountIsSetAndChecked) {
  const ThreadCount count(3);
  EXPECT_EQ(attn::num_threads(), 3);
  EXPECT_THAT(attn::test::error_of([] { attn::set_num_threads(0); }),
              HasSubstr("[set_num_threads] n must be at least 1, got 0"));
  EXPECT_EQ(attn::num_threads(), 3);
}

TEST(Threads, CountIsOneForTheWholeProcess) {
  const ThreadCount count(1);
  int seen = 0;
  std::thread other([&] { seen = attn::num_threads(); });
  other.join();
  EXPECT_EQ(seen, 1) << "a thread the program started finds the count set elsewhere";
}

}  // namespace
