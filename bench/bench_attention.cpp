// Attention forward throughput: attn's kernels (through the public
// scaled_dot_product_attention_into, so whatever Kernel::fused and Kernel::automatic
// run in this build) against the OpenBLAS baseline of bench/support, sgemm + softmax +
// sgemm with full or 256-row-blocked scores. B = 1, H = 8; args L, D, causal, threads.
// Counters: GFLOP/s (bench/support's one FLOP formula) and the fraction of the FMA
// peak measured at startup for that thread count. Each iteration is timed alone
// (manual time) after a cache flush; the first run, outside the timing, is the warm-up.
//
//   build/release/bench/bench_attention --benchmark_filter='Fused/L:4096/D:128/causal:1/threads:2'
//   (add --benchmark_repetitions=5 --benchmark_report_aggregates_only=true for medians)
//
// This binary does not check results: `attn bench` checks every kernel against the
// reference, and tests/test_bench_support.cpp checks the baseline.
#include <benchmark/benchmark.h>
#include <fmt/format.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "attn/ops.hpp"
#include "attn/rng.hpp"
#include "attn/threads.hpp"
#include "support/blas_attention.hpp"
#include "support/flops.hpp"
#include "support/measure.hpp"
#include "support/peak_fma.hpp"

namespace {

constexpr std::int64_t kBatch = 1, kHeads = 8;
// The reference kernel takes seconds per forward at L = 1024 and hours at 16384.
constexpr std::int64_t kReferenceMaxLength = 1024;

std::map<int, double>& peaks() {  // threads -> GFLOP/s, measured in main
  static std::map<int, double> p;
  return p;
}

struct Case {
  std::int64_t length, head_dim;
  bool causal;
  int threads;
  explicit Case(const benchmark::State& s)
      : length(s.range(0)),
        head_dim(s.range(1)),
        causal(s.range(2) != 0),
        threads(static_cast<int>(s.range(3))) {}
};

struct Inputs {
  attn::Tensor q, k, v, out;  // (B, H, L, D) each
  explicit Inputs(const Case& c) {
    attn::Rng rng(2026);
    const attn::Shape shape{kBatch, kHeads, c.length, c.head_dim};
    q = attn::Tensor::randn(shape, rng);
    k = attn::Tensor::randn(shape, rng);
    v = attn::Tensor::randn(shape, rng);
    out = attn::Tensor::zeros(shape);
  }
};

// Times `forward` once per iteration after a cache flush, then sets the counters.
template <class F>
void measure(benchmark::State& state, const Case& c, F&& forward) {
  attn::bench::CacheFlusher flusher;
  forward();  // the warm-up
  double seconds = 0;
  for (auto _ : state) {
    flusher.flush();
    const auto t0 = std::chrono::steady_clock::now();
    forward();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    state.SetIterationTime(s);
    seconds += s;
  }
  const double flops =
      attn::bench::attention_flops(kBatch, kHeads, c.length, c.length, c.head_dim,
                                   c.causal ? std::optional(attn::Align::top_left) : std::nullopt);
  const double gflops = flops * static_cast<double>(state.iterations()) / seconds / 1e9;
  state.counters["GFLOP/s"] = gflops;
  state.counters["peak_frac"] = gflops / peaks().at(c.threads);
}

void library_kernel(benchmark::State& state, attn::Kernel kernel) {
  const Case c(state);
  attn::set_num_threads(c.threads);
  attn::SdpaOptions options;
  options.kernel = kernel;
  if (c.causal) options.mask = attn::Mask::causal();
  {
    // What this build runs for the kernel, found first at L <= 1024, where even the
    // reference is quick.
    Case small = c;
    small.length = std::min<std::int64_t>(c.length, kReferenceMaxLength);
    const Inputs probe(small);
    const attn::AttentionResult r =
        attn::scaled_dot_product_attention_into(probe.q, probe.k, probe.v, probe.out, options);
    if (r.kernel == attn::Kernel::reference && c.length > kReferenceMaxLength) {
      state.SkipWithError(fmt::format("runs the reference kernel ({}): too slow above L = {}",
                                      r.kernel_reason, kReferenceMaxLength)
                              .c_str());
      return;
    }
    state.SetLabel(attn::to_string(r.kernel));
  }
  const Inputs in(c);
  measure(state, c,
          [&] { attn::scaled_dot_product_attention_into(in.q, in.k, in.v, in.out, options); });
}

void blas(benchmark::State& state, attn::bench::BlasVariant variant) {
  const Case c(state);
  const Inputs in(c);
  attn::bench::BlasAttention baseline(c.length, c.head_dim, variant, c.threads);
  state.SetLabel(attn::bench::to_string(variant));
  measure(state, c, [&] { baseline.run(in.q, in.k, in.v, in.out, c.causal); });
  state.counters["scratch_MB"] = static_cast<double>(baseline.extra_bytes()) / 1e6;
}

void BM_Fused(benchmark::State& state) { library_kernel(state, attn::Kernel::fused); }
void BM_Automatic(benchmark::State& state) { library_kernel(state, attn::Kernel::automatic); }
void BM_Reference(benchmark::State& state) { library_kernel(state, attn::Kernel::reference); }
void BM_BaselineFull(benchmark::State& state) { blas(state, attn::bench::BlasVariant::full); }
void BM_BaselineBlocked(benchmark::State& state) {
  blas(state, attn::bench::BlasVariant::row_blocked);
}

const std::vector<std::int64_t> kLengths{512, 1024, 2048, 4096, 8192, 16384};
const std::vector<std::int64_t> kDims{64, 128}, kCausal{0, 1}, kThreads{1, 2};

void all_sizes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"L", "D", "causal", "threads"})
      ->ArgsProduct({kLengths, kDims, kCausal, kThreads})
      ->UseManualTime()
      ->Unit(benchmark::kMillisecond);
}

BENCHMARK(BM_Fused)->Apply(all_sizes);
BENCHMARK(BM_Automatic)->Apply(all_sizes);
BENCHMARK(BM_BaselineFull)->Apply(all_sizes);
BENCHMARK(BM_BaselineBlocked)->Apply(all_sizes);
BENCHMARK(BM_Reference)
    ->ArgNames({"L", "D", "causal", "threads"})
    ->ArgsProduct({{256, 512}, kDims, kCausal, kThreads})
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);

}  // namespace

int main(int argc, char** argv) {
  const std::string pinned = attn::bench::openblas_coretype_env();
  if (!pinned.empty())
    fmt::print(stderr,
               "warning: OPENBLAS_CORETYPE={} pins OpenBLAS's kernels; unset it for a fair "
               "baseline (attn bench restarts itself without it)\n",
               pinned);
  fmt::print(stderr, "OpenBLAS corename {}; {}\n", attn::bench::openblas_corename(),
             attn::bench::openblas_config());
  for (const std::int64_t t : kThreads) {
    const attn::bench::PeakFma p = attn::bench::measure_peak_fma(static_cast<int>(t));
    peaks()[static_cast<int>(t)] = p.gflops;
    fmt::print(stderr, "peak ({} thread{}, {} x {} floats): {:.1f} GFLOP/s\n", t, t == 1 ? "" : "s",
               p.target, p.lanes, p.gflops);
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
