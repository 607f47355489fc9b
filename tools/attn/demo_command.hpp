// `attn demo`: registers the subcommand that runs the worked examples (demo.hpp).
#pragma once

#include <CLI/CLI.hpp>

namespace attn::tools {

// Adds the `demo` subcommand to `app`; when it runs, its exit status goes to `status`.
void add_demo_command(CLI::App& app, int& status);

}  // namespace attn::tools
