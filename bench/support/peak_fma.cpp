// measure_peak_fma: the FMA chains, compiled once per Highway target and dispatched
// to the best one the CPU has.
#include "support/peak_fma.hpp"

#include <chrono>
#include <cstdint>
#include <latch>
#include <thread>
#include <vector>

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "support/peak_fma.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

HWY_BEFORE_NAMESPACE();
namespace attn::bench::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// 12 chains + 2 constants fit AVX2's 16 vector registers (peak_fma.hpp).
constexpr int kChains = 12;

// `iterations` rounds of kChains independent FMAs; returns a sum of the chains so
// that the compiler keeps them. The chains converge to 1 (x = 0.5 x + 0.5): no
// overflow, no denormals.
float FmaChains(std::int64_t iterations) {
  const hn::ScalableTag<float> d;
  const auto mul = hn::Set(d, 0.5f), add = hn::Set(d, 0.5f);
  hn::Vec<decltype(d)> acc[kChains];
  for (int c = 0; c < kChains; ++c) acc[c] = hn::Set(d, static_cast<float>(c));
  for (std::int64_t it = 0; it < iterations; ++it) {
    for (int c = 0; c < kChains; ++c) acc[c] = hn::MulAdd(acc[c], mul, add);
  }
  auto sum = acc[0];
  for (int c = 1; c < kChains; ++c) sum = hn::Add(sum, acc[c]);
  return hn::GetLane(hn::SumOfLanes(d, sum));
}

int FmaLanes() { return static_cast<int>(hn::Lanes(hn::ScalableTag<float>())); }
// FLOPs of one iteration of FmaChains: an FMA is two.
double FmaFlopsPerIteration() { return 2.0 * kChains * FmaLanes(); }
const char* FmaTarget() { return hwy::TargetName(HWY_TARGET); }

}  // namespace attn::bench::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace attn::bench {

HWY_EXPORT(FmaChains);
HWY_EXPORT(FmaLanes);
HWY_EXPORT(FmaFlopsPerIteration);
HWY_EXPORT(FmaTarget);

namespace {

constexpr std::int64_t kBatch = 1 << 14;  // iterations between looks at the clock

// Every thread runs chains for `seconds`; the FLOPs of all of them over the wall
// time from the common start to the last finish.
double run_once(int threads, double seconds) {
  using Clock = std::chrono::steady_clock;
  const double flops_per_batch =
      HWY_DYNAMIC_DISPATCH(FmaFlopsPerIteration)() * static_cast<double>(kBatch);
  std::vector<double> flops(static_cast<std::size_t>(threads), 0.0);
  std::vector<float> sink(static_cast<std::size_t>(threads), 0.0f);
  std::latch start(threads + 1);
  Clock::time_point t0;
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      start.arrive_and_wait();
      const auto end = Clock::now() + std::chrono::duration<double>(seconds);
      double done = 0;
      float s = 0;
      while (Clock::now() < end) {
        s += HWY_DYNAMIC_DISPATCH(FmaChains)(kBatch);
        done += flops_per_batch;
      }
      flops[static_cast<std::size_t>(t)] = done;
      sink[static_cast<std::size_t>(t)] = s;
    });
  }
  t0 = Clock::now();
  start.arrive_and_wait();
  for (std::thread& th : pool) th.join();
  const double elapsed = std::chrono::duration<double>(Clock::now() - t0).count();
  double total = 0;
  volatile float keep = 0;  // the chains' results are used
  for (std::size_t t = 0; t < flops.size(); ++t) {
    total += flops[t];
    keep = keep + sink[t];
  }
  return total / elapsed / 1e9;
}

}  // namespace

PeakFma measure_peak_fma(int threads, double seconds, int runs) {
  PeakFma peak;
  peak.threads = threads < 1 ? 1 : threads;
  peak.lanes = HWY_DYNAMIC_DISPATCH(FmaLanes)();
  peak.target = HWY_DYNAMIC_DISPATCH(FmaTarget)();
  for (int r = 0; r < (runs < 1 ? 1 : runs); ++r) {
    const double g = run_once(peak.threads, seconds);
    if (g > peak.gflops) peak.gflops = g;
  }
  return peak;
}

}  // namespace attn::bench
#endif  // HWY_ONCE
