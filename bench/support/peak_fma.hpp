// The measured peak: how many single-precision FMA FLOPs per second this machine's
// cores sustain, the denominator of every "fraction of peak" in bench/ and
// `attn bench`.
//
// Each thread runs 12 independent FMA chains on the widest vectors Highway
// dispatches to at run time (no -m flags): enough to cover the FMA latency times the
// FMA pipes (4 cycles x 2 pipes on Zen 3 and Skylake: 8), few enough to stay in
// AVX2's 16 registers with the two constants (16 chains spilled: 57 GFLOP/s instead
// of 97 on one Zen 3 core). A run lasts `seconds`; the peak is the best of `runs`.
#pragma once

#include <string>

namespace attn::bench {

struct PeakFma {
  double gflops = 0;  // all threads together
  int threads = 1;
  int lanes = 0;       // floats per vector
  std::string target;  // Highway's name of the dispatched target, e.g. "AVX2"
};

PeakFma measure_peak_fma(int threads, double seconds = 0.2, int runs = 3);

}  // namespace attn::bench
