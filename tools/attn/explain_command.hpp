// `attn explain`: the shape walk-through of one multi-head attention forward, printed
// stage by stage, and with -o FILE the network drawn with the shape on every edge.
#pragma once

#include <CLI/CLI.hpp>

namespace attn::tools {

// Adds the `explain` subcommand to `app`; when it runs, its exit status goes to `status`.
void add_explain_command(CLI::App& app, int& status);

}  // namespace attn::tools
