// `attn bench`: the FMA peak probe, then every (kernel, L, D, causal, threads) case
// of the options, each the median of --repeats runs after a warm-up, the kernels of
// one (L, D, causal, threads) alternated run by run; a table with
// GFLOP/s (bench/support's one FLOP formula), % of the peak for that thread count,
// the speed-up over the best baseline and of causal over non-causal; a chart with
// --chart; the extra memory of one forward with --memory.
//
//   attn bench                                   # L 512..4096, D 64 and 128, 1 and 2 threads
//   attn bench --lengths 1024,16384 --dims 128 --threads 2 --kernels fused,baseline_blocked
//   attn bench --chart bench.svg --memory
#include "bench_command.hpp"

#include <unistd.h>

#include <fmt/chrono.h>
#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "attn/error.hpp"
#include "attn/plot_chart.hpp"
#include "bench_cases.hpp"
#include "support/blas_attention.hpp"
#include "support/flops.hpp"
#include "support/measure.hpp"
#include "support/peak_fma.hpp"

namespace attn::tools {
namespace {

// The reference kernel takes seconds per forward at L = 1024 and hours at 16384.
constexpr std::int64_t kReferenceMaxLength = 1024;
constexpr std::int64_t kCheckLength = 128;  // each kernel is checked at this length

const std::map<std::string, BenchKernel> kKernelNames = {
    {"fused", BenchKernel::fused},
    {"automatic", BenchKernel::automatic},
    {"reference", BenchKernel::reference},
    {"baseline_full", BenchKernel::baseline_full},
    {"baseline_blocked", BenchKernel::baseline_blocked}};

struct BenchCommand {
  std::vector<std::int64_t> lengths{512, 1024, 2048, 4096};
  std::vector<std::int64_t> dims{64, 128};
  std::vector<int> threads{1, 2};
  std::vector<std::string> kernels{"fused", "reference", "baseline_full", "baseline_blocked"};
  std::string causal = "both";
  std::int64_t batch = 1, heads = 8;
  int repeats = 5;
  std::string chart;
  bool memory = false;
  std::int64_t memory_length = 16384, memory_dim = 128;
};

struct Row {
  BenchCase c;
  BenchTiming timing;
  double gflops = 0, peak_fraction = 0;
};

// OpenBLAS reads OPENBLAS_CORETYPE once, when it loads: restart without it.
void restart_without_openblas_coretype() {
  const std::string pinned = bench::openblas_coretype_env();
  if (pinned.empty()) return;
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  const std::string all{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  std::vector<std::string> args;
  for (std::size_t start = 0; start < all.size();) {
    const std::size_t end = all.find('\0', start);
    args.push_back(all.substr(start, end - start));
    if (end == std::string::npos) break;
    start = end + 1;
  }
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  fmt::print(
      "note: OPENBLAS_CORETYPE={} pins OpenBLAS's kernels; restarting without it so that "
      "OpenBLAS picks its own for this CPU\n",
      pinned);
  std::fflush(stdout);
  unsetenv("OPENBLAS_CORETYPE");
  execv("/proc/self/exe", argv.data());
  fmt::print("note: the restart failed; OpenBLAS stays pinned to {}\n", pinned);
}

std::string utc_now() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  return fmt::format("{:%Y-%m-%d %H:%M} UTC", tm);
}

std::vector<bool> causal_values(const std::string& causal) {
  if (causal == "yes") return {true};
  if (causal == "no") return {false};
  return {false, true};
}

std::string fmt_fixed(double v, int digits) { return fmt::format("{:.{}f}", v, digits); }

void draw_chart(const std::vector<Row>& rows, const std::map<int, bench::PeakFma>& peaks,
                const std::string& path) {
  // One panel per (D, threads), a row of panels per D; one series per (kernel that
  // ran, causal): causal dashed.
  const std::size_t threads = peaks.size();
  std::map<std::pair<std::int64_t, int>, plot::ChartPanel> panels;
  std::map<std::string, plot::Rgb> colors;
  for (const Row& r : rows) {
    plot::ChartPanel& panel = panels[{r.c.head_dim, r.c.threads}];
    if (panel.title.empty()) {
      panel.title = fmt::format("D = {}, {} thread{}", r.c.head_dim, r.c.threads,
                                r.c.threads == 1 ? "" : "s");
      panel.reference_y = peaks.at(r.c.threads).gflops;
      panel.reference_label = fmt::format("measured FMA peak {:.0f} GFLOP/s", *panel.reference_y);
    }
    const std::string label = r.timing.ran + (r.c.causal ? " causal" : "");
    auto it = std::find_if(panel.series.begin(), panel.series.end(),
                           [&](const plot::ChartSeries& s) { return s.label == label; });
    if (it == panel.series.end()) {
      if (!colors.contains(r.timing.ran)) colors[r.timing.ran] = plot::chart_color(colors.size());
      panel.series.push_back({.label = label, .color = colors[r.timing.ran], .dashed = r.c.causal});
      it = std::prev(panel.series.end());
    }
    it->x.push_back(static_cast<double>(r.c.length));
    it->y.push_back(r.gflops);
  }
  std::vector<plot::ChartPanel> list;
  for (auto& [key, panel] : panels) list.push_back(std::move(panel));
  const plot::LineChart chart = plot::line_chart(
      list,
      {.title = fmt::format("Attention forward, B = {}, H = {}", rows[0].c.batch, rows[0].c.heads),
       .xlabel = "sequence length L",
       .ylabel = "GFLOP/s",
       .columns = static_cast<int>(threads)});
  chart.save(path);
  fmt::print("wrote {}\n{}\n", path, chart.description());
}

void run_bench(const BenchCommand& command) {
  restart_without_openblas_coretype();
  std::vector<BenchKernel> kernels;
  for (const std::string& k : command.kernels) kernels.push_back(kKernelNames.at(k));

  fmt::print("date: {}\n", utc_now());
  fmt::print("machine: {}, {} cores\n", bench::cpu_model(), bench::available_cores());
  fmt::print("OpenBLAS: corename {}, config {}\n", bench::openblas_corename(),
             bench::openblas_config());

  // First, before this process starts any OpenMP thread: the measurement forks.
  if (command.memory) {
    BenchCase m{.kernel = BenchKernel::fused,
                .batch = 1,
                .heads = command.heads,
                .length = command.memory_length,
                .head_dim = command.memory_dim};
    const double io_mib = 4.0 * m.heads * m.length * m.head_dim * 4 / (1 << 20);
    const MemoryResult r = forward_extra_memory(m, kReferenceMaxLength);
    if (r.skipped) {
      fmt::print(
          "memory: skipped: Kernel::fused runs the {} kernel in this build, too slow at "
          "L = {}\n",
          r.ran, m.length);
    } else {
      fmt::print(
          "memory: one forward of the {} kernel at B = 1, H = {}, L = {}, D = {} adds "
          "{:.1f} MiB of peak resident memory (q, k, v and out, {:.0f} MiB, allocated "
          "before)\n",
          r.ran, m.heads, m.length, m.head_dim, static_cast<double>(r.bytes) / (1 << 20), io_mib);
    }
    fmt::print(
        "memory: the baselines' scores at that size, per thread: full {:.0f} MiB, "
        "row-blocked {:.0f} MiB\n",
        4.0 * m.length * m.length / (1 << 20),
        4.0 * std::min(m.length, bench::kRowBlock) * m.length / (1 << 20));
  }

  std::fflush(stdout);  // what is known so far, before the long part
  std::map<int, bench::PeakFma> peaks;
  for (const int t : command.threads) peaks[t] = bench::measure_peak_fma(t);
  const bench::PeakFma& any = peaks.begin()->second;
  fmt::print("peak: Highway target {} ({} floats per vector)", any.target, any.lanes);
  for (const auto& [t, p] : peaks)
    fmt::print(", {} thread{} {:.1f} GFLOP/s", t, t == 1 ? "" : "s", p.gflops);
  fmt::print(" (FMA chains, best of 3)\n");
  if (command.threads.back() > bench::available_cores())
    fmt::print("note: more threads than the {} cores this process may use\n",
               bench::available_cores());

  // Each kernel checked against the reference once per (D, causal).
  const std::vector<bool> causals = causal_values(command.causal);
  for (const BenchKernel k : kernels) {
    if (k == BenchKernel::reference) continue;
    for (const std::int64_t d : command.dims)
      for (const bool causal : causals) {
        const BenchCase c{.kernel = k, .head_dim = d, .causal = causal, .threads = 1};
        fmt::print("check: {} D = {}{} at L = {}: relative error {:.1e} against the reference\n",
                   to_string(k), d, causal ? " causal" : "", kCheckLength,
                   relative_error_vs_reference(c, kCheckLength));
      }
  }

  std::fflush(stdout);
  // What each kernel runs, per (D, causal), at the longest L.
  std::map<std::tuple<BenchKernel, std::int64_t, bool>, std::pair<std::string, std::string>> runs;
  for (const BenchKernel k : kernels)
    for (const std::int64_t d : command.dims)
      for (const bool causal : causals) {
        const BenchCase probe{
            .kernel = k,
            .length = *std::max_element(command.lengths.begin(), command.lengths.end()),
            .head_dim = d,
            .causal = causal};
        std::string reason;
        std::string ran = kernel_that_runs(probe, &reason);
        runs[{k, d, causal}] = {std::move(ran), std::move(reason)};
      }

  // Each case's kernels timed together, their runs alternated (time_cases).
  std::vector<Row> rows;
  std::vector<std::string> notes;
  for (const std::int64_t d : command.dims)
    for (const bool causal : causals)
      for (const int t : command.threads)
        for (const std::int64_t l : command.lengths) {
          std::vector<BenchCase> cases;
          for (const BenchKernel k : kernels) {
            const auto& [ran, reason] = runs.at({k, d, causal});
            if (ran == "reference" && l > kReferenceMaxLength) {
              const std::string note =
                  fmt::format("{} (runs the reference kernel: {}) skipped above L = {}: too slow",
                              to_string(k), reason, kReferenceMaxLength);
              if (std::find(notes.begin(), notes.end(), note) == notes.end()) notes.push_back(note);
              continue;
            }
            cases.push_back({.kernel = k,
                             .batch = command.batch,
                             .heads = command.heads,
                             .length = l,
                             .head_dim = d,
                             .causal = causal,
                             .threads = t});
          }
          const std::vector<BenchTiming> timings = time_cases(cases, command.repeats);
          for (std::size_t i = 0; i < cases.size(); ++i) {
            Row r{.c = cases[i], .timing = timings[i]};
            const double flops = bench::attention_flops(
                r.c.batch, r.c.heads, l, l, d, causal ? std::optional(Align::top_left) : std::nullopt);
            r.gflops = flops / (r.timing.ms * 1e-3) / 1e9;
            rows.push_back(r);
          }
        }
  // The table by kernel, as the options list them, then D, causal, threads and L.
  const auto kernel_rank = [&](BenchKernel k) {
    return std::find(kernels.begin(), kernels.end(), k) - kernels.begin();
  };
  std::stable_sort(rows.begin(), rows.end(), [&](const Row& x, const Row& y) {
    return kernel_rank(x.c.kernel) < kernel_rank(y.c.kernel);
  });

  // The probe once more, after the cases: on a shared machine either probe can
  // read low, and a low peak would flatter every "% peak". The higher one counts.
  for (auto& [t, p] : peaks) {
    const bench::PeakFma again = bench::measure_peak_fma(t);
    fmt::print("peak again, {} thread{}: {:.1f} GFLOP/s\n", t, t == 1 ? "" : "s", again.gflops);
    p.gflops = std::max(p.gflops, again.gflops);
  }
  for (Row& r : rows) r.peak_fraction = r.gflops / peaks.at(r.c.threads).gflops;

  // Speed-ups: over the best baseline of the same case, and of causal over non-causal.
  const auto same = [](const BenchCase& a, const BenchCase& b) {
    return a.length == b.length && a.head_dim == b.head_dim && a.threads == b.threads;
  };
  fmt::print(
      "\nB = {}, H = {}; ms is the median of {} runs after a warm-up, a case's kernels run in turn; GFLOP/s counts "
      "4 B H L^2 D (causal: the L (L + 1) / 2 allowed pairs)\n",
      command.batch, command.heads, command.repeats);
  fmt::print("{:<18} {:<10} {:>6} {:>4} {:>6} {:>7} {:>10} {:>9} {:>7} {:>11} {:>11}\n", "kernel",
             "ran", "L", "D", "causal", "threads", "ms", "GFLOP/s", "% peak", "x baseline",
             "x causal");
  for (const Row& r : rows) {
    std::string vs_baseline = "-", vs_causal = "-";
    if (!is_baseline(r.c.kernel)) {
      double best = 0;
      for (const Row& b : rows)
        if (is_baseline(b.c.kernel) && same(b.c, r.c) && b.c.causal == r.c.causal)
          best = best == 0 ? b.timing.ms : std::min(best, b.timing.ms);
      if (best > 0) vs_baseline = fmt_fixed(best / r.timing.ms, 2);
    }
    if (r.c.causal)
      for (const Row& n : rows)
        if (n.c.kernel == r.c.kernel && same(n.c, r.c) && !n.c.causal)
          vs_causal = fmt_fixed(n.timing.ms / r.timing.ms, 2);
    fmt::print("{:<18} {:<10} {:>6} {:>4} {:>6} {:>7} {:>10.3f} {:>9.2f} {:>6.1f}% {:>11} {:>11}\n",
               to_string(r.c.kernel), is_baseline(r.c.kernel) ? "openblas" : r.timing.ran,
               r.c.length, r.c.head_dim, r.c.causal ? "yes" : "no", r.c.threads, r.timing.ms,
               r.gflops, 100 * r.peak_fraction, vs_baseline, vs_causal);
  }
  fmt::print(
      "x baseline: the best baseline's ms over the row's (same L, D, causal, threads); "
      "x causal: the kernel's non-causal ms over its causal ms\n");
  for (const std::string& note : notes) fmt::print("note: {}\n", note);
  if (!command.chart.empty()) {
    if (rows.empty()) throw Error("[attn bench] --chart: no case was measured");
    draw_chart(rows, peaks, command.chart);
  }
}

}  // namespace

void add_bench_command(CLI::App& app, int& status) {
  auto command = std::make_shared<BenchCommand>();
  CLI::App* sub = app.add_subcommand(
      "bench",
      "Attention forward speed of attn's kernels and of an OpenBLAS baseline: GFLOP/s "
      "and the fraction of the measured FMA peak");
  sub->add_option("--lengths", command->lengths,
                  "Sequence lengths L (Lq = Lk), comma-separated; the default stops at 4096 so "
                  "that a default run takes minutes: add 8192,16384 for more")
      ->delimiter(',')
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  sub->add_option("--dims", command->dims, "Head dims D, comma-separated")
      ->delimiter(',')
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  sub->add_option("--threads", command->threads, "Thread counts, comma-separated")
      ->delimiter(',')
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  sub->add_option("--kernels", command->kernels,
                  "Comma-separated: fused, automatic, reference (L <= 1024 only), "
                  "baseline_full (OpenBLAS, all L x L scores of a head), baseline_blocked "
                  "(OpenBLAS, 256-row blocks of scores)")
      ->delimiter(',')
      ->check(CLI::IsMember(kKernelNames))
      ->capture_default_str();
  sub->add_option("--causal", command->causal, "both, yes (causal mask only) or no")
      ->check(CLI::IsMember({"both", "yes", "no"}))
      ->capture_default_str();
  sub->add_option("--heads", command->heads, "Heads H")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  sub->add_option("--batch", command->batch, "Batch B")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  sub->add_option("--repeats", command->repeats, "Timed runs per case (the median is shown)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  sub->add_option("--chart", command->chart, "Draw GFLOP/s against L: FILE.png, .svg or .pdf")
      ->option_text("FILE");
  sub->add_flag("--memory", command->memory,
                "Also measure the peak extra memory of one fused forward (in a forked process)");
  sub->add_option("--memory-length", command->memory_length, "L of the --memory case")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  sub->add_option("--memory-dim", command->memory_dim, "D of the --memory case")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  sub->callback([command, &status] {
    std::sort(command->threads.begin(), command->threads.end());
    run_bench(*command);
    status = 0;
  });
}

}  // namespace attn::tools
