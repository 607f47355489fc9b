// `attn bench`: attention forward throughput of attn's kernels and of an OpenBLAS
// baseline (sgemm + softmax + sgemm), in GFLOP/s and as a fraction of the measured
// FMA peak, printed as a table and optionally drawn as a chart.
#pragma once

#include <CLI/CLI.hpp>

namespace attn::tools {

// Adds the subcommand to `app`; when it runs, it sets `status` to the process's exit
// status. When OPENBLAS_CORETYPE is set, the command first restarts the process
// without it, so that OpenBLAS picks its kernels for this CPU.
void add_bench_command(CLI::App& app, int& status);

}  // namespace attn::tools
