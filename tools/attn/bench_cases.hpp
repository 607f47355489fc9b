// The measurements behind `attn bench`: the kernels of one attention forward case
// timed together (medians of repeats after a warm-up, their runs alternated, caches
// flushed between runs), a kernel's output checked against the reference, and the
// peak extra memory of one forward in a forked child.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace attn::tools {

// What `attn bench` can run: the library's kernels through
// scaled_dot_product_attention_into, and the two OpenBLAS baselines of bench/support.
enum class BenchKernel { fused, automatic, reference, baseline_full, baseline_blocked };
std::string to_string(BenchKernel kernel);
bool is_baseline(BenchKernel kernel);

struct BenchCase {
  BenchKernel kernel = BenchKernel::fused;
  std::int64_t batch = 1, heads = 8, length = 512, head_dim = 64;
  bool causal = false;
  int threads = 1;
};

struct BenchTiming {
  std::string ran;     // the kernel that ran, as AttentionResult::kernel says (or the baseline)
  std::string reason;  // AttentionResult::kernel_reason
  double ms = 0;       // median of the repeats
};

// The kernels of one case (the cases differ in their kernel only), on the same
// inputs: a warm-up run of each, then `repeats` rounds of one timed run of each in
// turn (each round starting one kernel later), each after a cache flush, so that
// what the machine's other load does to one kernel's runs it does to the others'.
// In the order of `cases`.
std::vector<BenchTiming> time_cases(const std::vector<BenchCase>& cases, int repeats);

// What scaled_dot_product_attention runs for the case's kernel: one run of one head at
// the case's length, at most 1024, with the same head dim and mask.
std::string kernel_that_runs(const BenchCase& c, std::string* reason = nullptr);

// The relative error (2-norm) of the case's kernel against the reference kernel, at
// the case's head dim and mask with B = 1, H = 2 and L = `length`.
double relative_error_vs_reference(const BenchCase& c, std::int64_t length);

struct MemoryResult {
  std::string ran;         // the kernel that ran (or would have)
  bool skipped = false;    // it is the reference and L > max_reference_length
  std::int64_t bytes = 0;  // the peak resident memory during the forward, less that before it
};

// One forward of the case in a forked child whose inputs and output are allocated
// (and written) before the measurement starts. All of it happens in the child, the
// check of what runs included, so that the parent has started no OpenMP threads when
// it forks. Throws attn::Error when the child fails.
MemoryResult forward_extra_memory(const BenchCase& c, std::int64_t max_reference_length);

}  // namespace attn::tools
