// Attention backward against forward: the fused backward and the fused forward of
// scaled_dot_product_attention at the same shape, timed alternately in the same
// iterations (each after a cache flush), so that their ratio is measured under the
// same load. B = 1, H = 8; args L, D, causal, threads.
// Counters: fwd_ms and bwd_ms (medians), bwd_over_fwd (the median of each
// iteration's ratio: a slow spell of the host that hits one side of a pair
// moves one ratio, not the median), and the
// backward's GFLOP/s and fraction of the FMA peak, counting 2.5 times the
// forward's FLOPs (five products where the forward has two, FlashAttention's
// convention; the recomputed scores are not counted).
//
//   build/release/bench/bench_backward --benchmark_filter='L:4096/D:128/causal:0/threads:2'
//   build/release/bench/bench_backward --memory   (peak extra memory of one backward per L)
//
// This binary does not check results: tests/test_attention_backward_conformance.cpp
// holds the fused backward to the reference.
#include <benchmark/benchmark.h>
#include <fmt/format.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstring>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "attn/backward.hpp"
#include "attn/ops.hpp"
#include "attn/rng.hpp"
#include "attn/threads.hpp"
#include "support/flops.hpp"
#include "support/measure.hpp"
#include "support/peak_fma.hpp"

namespace {

constexpr std::int64_t kBatch = 1, kHeads = 8;
constexpr double kBackwardFlopsOverForward = 2.5;

std::map<int, double>& peaks() {  // threads -> GFLOP/s, measured in main
  static std::map<int, double> p;
  return p;
}

// q, k, v, dout (B, H, L, D), and the forward's result.
struct Problem {
  attn::Tensor q, k, v, dout;
  attn::SdpaOptions options;
  attn::AttentionResult forward;
  Problem(std::int64_t length, std::int64_t head_dim, bool causal) {
    attn::Rng rng(2026);
    const attn::Shape shape{kBatch, kHeads, length, head_dim};
    q = attn::Tensor::randn(shape, rng);
    k = attn::Tensor::randn(shape, rng);
    v = attn::Tensor::randn(shape, rng);
    dout = attn::Tensor::randn(shape, rng);
    options.kernel = attn::Kernel::fused;
    if (causal) options.mask = attn::Mask::causal();
    forward = attn::scaled_dot_product_attention(q, k, v, options);
  }
  void run_forward() { forward = attn::scaled_dot_product_attention(q, k, v, options); }
  attn::AttentionGrads run_backward() const {
    return attn::scaled_dot_product_attention_backward(q, k, v, forward.out, forward.lse, dout, options,
                                                       attn::BackwardOptions{.kernel = attn::Kernel::fused});
  }
};

double seconds_of(const auto& f) {
  const auto t0 = std::chrono::steady_clock::now();
  f();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

void BM_BackwardVsForward(benchmark::State& state) {
  const std::int64_t length = state.range(0), head_dim = state.range(1);
  const bool causal = state.range(2) != 0;
  const int threads = static_cast<int>(state.range(3));
  attn::set_num_threads(threads);
  Problem p(length, head_dim, causal);
  state.SetLabel(p.run_backward().kernel_reason);  // also the warm-up
  attn::bench::CacheFlusher flusher;
  std::vector<double> forward, backward;
  for (auto _ : state) {
    flusher.flush();
    forward.push_back(seconds_of([&] { p.run_forward(); }));
    flusher.flush();
    backward.push_back(seconds_of([&] { benchmark::DoNotOptimize(p.run_backward()); }));
    state.SetIterationTime(backward.back());
  }
  const double fwd = attn::bench::median(forward), bwd = attn::bench::median(backward);
  const double flops = kBackwardFlopsOverForward *
                       attn::bench::attention_flops(kBatch, kHeads, length, length, head_dim,
                                                    causal ? std::optional(attn::Align::top_left) : std::nullopt);
  state.counters["fwd_ms"] = fwd * 1e3;
  state.counters["bwd_ms"] = bwd * 1e3;
  std::vector<double> ratios;
  for (std::size_t i = 0; i < forward.size(); ++i) ratios.push_back(backward[i] / forward[i]);
  state.counters["bwd_over_fwd"] = attn::bench::median(ratios);
  state.counters["GFLOP/s"] = flops / bwd / 1e9;
  state.counters["peak_frac"] = flops / bwd / 1e9 / peaks().at(threads);
}

BENCHMARK(BM_BackwardVsForward)
    ->ArgNames({"L", "D", "causal", "threads"})
    ->ArgsProduct({{2048, 4096, 8192}, {64, 128}, {0, 1}, {1, 2}})
    ->UseManualTime()
    ->Iterations(9)
    ->Unit(benchmark::kMillisecond);

// The peak extra resident memory of one fused backward (inputs, forward result and
// dout made first), measured in a forked child so that each case starts from a
// fresh peak; the parent has run no attention yet, so no worker threads exist to
// fork with.
std::int64_t backward_extra_bytes(std::int64_t length, std::int64_t head_dim, int threads) {
  int fds[2];
  if (pipe(fds) != 0) return -1;
  const pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    close(fds[0]);
    attn::set_num_threads(threads);
    std::int64_t bytes = -1;
    try {
      const Problem p(length, head_dim, false);
      const std::int64_t before = attn::bench::current_rss_bytes();
      const attn::AttentionGrads g = p.run_backward();
      // The gradients are outputs, as q, k, v, out and dout are inputs: not extra.
      const std::int64_t outputs = (g.dq.numel() + g.dk.numel() + g.dv.numel()) * std::int64_t{sizeof(float)};
      bytes = attn::bench::peak_rss_bytes() - before - outputs;
    } catch (...) {
    }
    _exit(write(fds[1], &bytes, sizeof bytes) == sizeof bytes ? 0 : 1);
  }
  close(fds[1]);
  std::int64_t bytes = -1;
  if (read(fds[0], &bytes, sizeof bytes) != sizeof bytes) bytes = -1;
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  return bytes;
}

int memory_report() {
  constexpr std::int64_t kDim = 128;
  constexpr int kThreads = 2;
  fmt::print("peak extra memory of one fused backward, B = {}, H = {}, D = {}, {} threads "
             "(beyond q, k, v, out, lse, dout and the gradients):\n",
             kBatch, kHeads, kDim, kThreads);
  fmt::print("{:>6}  {:>9}  {:>12}\n", "L", "MiB", "KiB per L");
  for (const std::int64_t length : {2048, 4096, 8192, 16384}) {
    const std::int64_t bytes = backward_extra_bytes(length, kDim, kThreads);
    if (bytes < 0) {
      fmt::print(stderr, "L = {}: the measuring child failed\n", length);
      return 1;
    }
    fmt::print("{:>6}  {:>9.1f}  {:>12.1f}\n", length, static_cast<double>(bytes) / (1 << 20),
               static_cast<double>(bytes) / 1024.0 / static_cast<double>(length));
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i)
    if (std::strcmp(argv[i], "--memory") == 0) return memory_report();
  for (const int t : {1, 2}) {
    const attn::bench::PeakFma p = attn::bench::measure_peak_fma(t);
    peaks()[t] = p.gflops;
    fmt::print(stderr, "peak ({} thread{}, {} x {} floats): {:.1f} GFLOP/s\n", t, t == 1 ? "" : "s", p.target,
               p.lanes, p.gflops);
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
