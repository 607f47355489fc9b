#include "bench_cases.hpp"

#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <tuple>
#include <vector>

#include "attn/error.hpp"
#include "attn/ops.hpp"
#include "attn/rng.hpp"
#include "attn/threads.hpp"
#include "support/blas_attention.hpp"
#include "support/measure.hpp"

namespace attn::tools {

std::string to_string(BenchKernel kernel) {
  switch (kernel) {
    case BenchKernel::fused:
      return "fused";
    case BenchKernel::automatic:
      return "automatic";
    case BenchKernel::reference:
      return "reference";
    case BenchKernel::baseline_full:
      return "baseline_full";
    case BenchKernel::baseline_blocked:
      return "baseline_blocked";
  }
  return "?";
}

bool is_baseline(BenchKernel kernel) {
  return kernel == BenchKernel::baseline_full || kernel == BenchKernel::baseline_blocked;
}

namespace {

constexpr std::uint64_t kSeed = 2026;
// kernel_that_runs looks at this size (or the case's, if smaller): where the reference
// still takes well under a second for one head, and large enough for an automatic
// choice to be the one of longer sequences.
constexpr std::int64_t kProbeLength = 1024;

struct Inputs {
  Tensor q, k, v, out;  // (B, H, L, D) each
};

Inputs make_inputs(const BenchCase& c) {
  Rng rng(kSeed);
  const Shape shape{c.batch, c.heads, c.length, c.head_dim};
  return {Tensor::randn(shape, rng), Tensor::randn(shape, rng), Tensor::randn(shape, rng),
          Tensor::zeros(shape)};
}

Kernel library_kernel(BenchKernel kernel) {
  switch (kernel) {
    case BenchKernel::fused:
      return Kernel::fused;
    case BenchKernel::reference:
      return Kernel::reference;
    default:
      return Kernel::automatic;
  }
}

// One forward pass of the case, on inputs made for it; returns what ran and why.
class Runner {
 public:
  explicit Runner(const BenchCase& c) : case_(c) {
    if (is_baseline(c.kernel))
      blas_.emplace(c.length, c.head_dim,
                    c.kernel == BenchKernel::baseline_full ? bench::BlasVariant::full
                                                           : bench::BlasVariant::row_blocked,
                    c.threads);
    options_.kernel = library_kernel(c.kernel);
    if (c.causal) options_.mask = Mask::causal();
    set_num_threads(c.threads);
  }

  std::pair<std::string, std::string> run(const Inputs& in) {
    if (blas_) {
      blas_->run(in.q, in.k, in.v, in.out, case_.causal);
      return {to_string(case_.kernel), "OpenBLAS sgemm + softmax + sgemm"};
    }
    const AttentionResult r = scaled_dot_product_attention_into(in.q, in.k, in.v, in.out, options_);
    return {attn::to_string(r.kernel), r.kernel_reason};
  }

 private:
  BenchCase case_;
  SdpaOptions options_;
  std::optional<bench::BlasAttention> blas_;
};

}  // namespace

std::vector<BenchTiming> time_cases(const std::vector<BenchCase>& cases, int repeats) {
  if (cases.empty()) return {};
  const Inputs in = make_inputs(cases.front());
  std::vector<std::unique_ptr<Runner>> runners;
  std::vector<BenchTiming> timings(cases.size());
  for (std::size_t i = 0; i < cases.size(); ++i) {
    runners.push_back(std::make_unique<Runner>(cases[i]));
    std::tie(timings[i].ran, timings[i].reason) = runners[i]->run(in);  // the warm-up
  }
  bench::CacheFlusher flusher;
  std::vector<std::vector<double>> ms(cases.size());
  // Each round starts one kernel later, so that none always runs right after the
  // same other one.
  for (int r = 0; r < repeats; ++r)
    for (std::size_t turn = 0; turn < cases.size(); ++turn) {
      const std::size_t i = (turn + static_cast<std::size_t>(r)) % cases.size();
      set_num_threads(cases[i].threads);
      flusher.flush();
      const auto t0 = std::chrono::steady_clock::now();
      runners[i]->run(in);
      ms[i].push_back(
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    }
  for (std::size_t i = 0; i < cases.size(); ++i) timings[i].ms = bench::median(ms[i]);
  return timings;
}

std::string kernel_that_runs(const BenchCase& c, std::string* reason) {
  if (is_baseline(c.kernel)) return to_string(c.kernel);
  BenchCase small = c;
  small.batch = 1;
  small.heads = 1;
  small.length = std::min(c.length, kProbeLength);
  const Inputs in = make_inputs(small);
  Runner runner(small);
  const auto [ran, why] = runner.run(in);
  if (reason != nullptr) *reason = why;
  return ran;
}

double relative_error_vs_reference(const BenchCase& c, std::int64_t length) {
  BenchCase small = c;
  small.batch = 1;
  small.heads = 2;
  small.length = length;
  const Inputs in = make_inputs(small);
  Runner(small).run(in);
  SdpaOptions options;
  options.kernel = Kernel::reference;
  if (c.causal) options.mask = Mask::causal();
  const Tensor want = scaled_dot_product_attention(in.q, in.k, in.v, options).out;
  long double diff = 0, norm = 0;
  for (std::int64_t i = 0; i < want.numel(); ++i) {
    const long double w = want.data()[i], g = in.out.data()[i];
    diff += (g - w) * (g - w);
    norm += w * w;
  }
  return norm == 0 ? (diff == 0 ? 0.0 : INFINITY) : static_cast<double>(std::sqrt(diff / norm));
}

MemoryResult forward_extra_memory(const BenchCase& c, std::int64_t max_reference_length) {
  // What the child sends back through the pipe.
  struct Report {
    std::int64_t bytes = -1;  // -1: the child failed
    bool skipped = false;
    char ran[32] = {};
  };
  int fds[2];
  if (pipe(fds) != 0) throw Error("[attn bench] --memory: pipe failed");
  std::fflush(stdout);
  const pid_t pid = fork();
  if (pid < 0) throw Error("[attn bench] --memory: fork failed");
  if (pid == 0) {
    close(fds[0]);
    Report report;
    try {
      const std::string ran = kernel_that_runs(c);
      std::snprintf(report.ran, sizeof report.ran, "%s", ran.c_str());
      report.skipped = ran == "reference" && c.length > max_reference_length;
      report.bytes = 0;
      if (!report.skipped) {
        const Inputs in = make_inputs(c);
        Runner runner(c);
        // Now, not the peak: the probe's freed memory may have left the peak higher.
        const std::int64_t before = bench::current_rss_bytes();
        runner.run(in);
        report.bytes = std::max<std::int64_t>(0, bench::peak_rss_bytes() - before);
      }
    } catch (...) {
      report.bytes = -1;
    }
    const ssize_t written = write(fds[1], &report, sizeof report);
    _exit(written == static_cast<ssize_t>(sizeof report) ? 0 : 1);
  }
  close(fds[1]);
  Report report;
  const ssize_t got = read(fds[0], &report, sizeof report);
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (got != static_cast<ssize_t>(sizeof report) || report.bytes < 0 || !WIFEXITED(status) ||
      WEXITSTATUS(status) != 0)
    throw Error("[attn bench] --memory: the measuring child process failed");
  return {report.ran, report.skipped, report.bytes};
}

}  // namespace attn::tools
