// `attn demo`: the worked example of each source document, computed with attn.
#pragma once

#include <cstdint>
#include <string>

namespace attn::tools {

struct DemoOptions {
  std::uint64_t seed = 0;  // of the one attn::Rng all inputs and parameters come from
  std::string json_path;   // where to write the record of every example; empty: none
  std::string out_dir = "attn-demo";  // the heatmaps and their index.html; created if missing
};

// Prints the walk-through to stdout and draws its pictures into `out_dir`; returns
// the process exit status. Throws if `out_dir` cannot be created or written.
int run_demo(const DemoOptions& options);

}  // namespace attn::tools
