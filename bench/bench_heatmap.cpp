// Heatmaps of large attention-weight matrices: how long attn::plot takes to block-
// average a (L, L) matrix to the output resolution and write it as PNG, SVG or PDF,
// and the process's peak resident memory (which includes the L x L input itself).
//
//   build/release/bench/bench_heatmap --benchmark_filter='Save/png/4096' --benchmark_repetitions=5
//
// Run one size per process for a peak-memory figure of that size alone: the peak
// only grows within a process.
#include <unistd.h>

#include <benchmark/benchmark.h>

#include <cstdint>
#include <filesystem>
#include <string>

#include "attn/plot.hpp"
#include "attn/rng.hpp"
#include "attn/tensor.hpp"
#include "support/measure.hpp"

namespace {

namespace fs = std::filesystem;

// Rows of a softmax over random scores: positive, summing to 1, not uniform.
attn::Tensor attention_like(std::int64_t length) {
  attn::Rng rng(2026);
  attn::Tensor w = attn::Tensor::rand({length, length}, rng);
  float* p = w.data();
  for (std::int64_t i = 0; i < length; ++i) {
    float* row = p + i * length;
    double sum = 0;
    for (std::int64_t j = 0; j < length; ++j) sum += row[j] = row[j] * row[j] * row[j];
    for (std::int64_t j = 0; j < length; ++j) row[j] = static_cast<float>(row[j] / sum);
  }
  return w;
}

void report(benchmark::State& state, std::int64_t length) {
  state.counters["cells/s"] = benchmark::Counter(static_cast<double>(length * length),
                                                 benchmark::Counter::kIsIterationInvariantRate);
  state.counters["peak_rss_MB"] = static_cast<double>(attn::bench::peak_rss_bytes()) / (1 << 20);
}

// Block means and layout only: heatmaps() reads the matrix once.
void BM_HeatmapLayout(benchmark::State& state) {
  const std::int64_t length = state.range(0);
  const attn::Tensor w = attention_like(length);
  for (auto _ : state) {
    attn::plot::Figure figure = attn::plot::heatmaps(w, {.xlabel = "Keys", .ylabel = "Queries"});
    benchmark::DoNotOptimize(figure);
  }
  report(state, length);
}

// The whole job: block means, layout, drawing and writing the file.
void save(benchmark::State& state, const char* extension) {
  const std::int64_t length = state.range(0);
  const attn::Tensor w = attention_like(length);
  const fs::path path = fs::temp_directory_path() /
                        ("attn_bench_heatmap_" + std::to_string(::getpid()) + extension);
  for (auto _ : state) {
    attn::plot::heatmaps(w, {.xlabel = "Keys", .ylabel = "Queries"}).save(path.string());
  }
  state.counters["file_KB"] = static_cast<double>(fs::file_size(path)) / 1024.0;
  fs::remove(path);
  report(state, length);
}

void BM_HeatmapSave_png(benchmark::State& state) { save(state, ".png"); }
void BM_HeatmapSave_svg(benchmark::State& state) { save(state, ".svg"); }
void BM_HeatmapSave_pdf(benchmark::State& state) { save(state, ".pdf"); }

BENCHMARK(BM_HeatmapLayout)->Arg(512)->Arg(1024)->Arg(4096)->Arg(8192)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_HeatmapSave_png)->Arg(512)->Arg(4096)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_HeatmapSave_svg)->Arg(4096)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_HeatmapSave_pdf)->Arg(4096)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
