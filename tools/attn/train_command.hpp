// `attn train`: trains the reverse task's attention model (reverse_task.hpp) from
// scratch with Adam, printing loss and accuracy with a progress bar, and saves its
// weights (safetensors) and a heatmap of what it learned to attend to.
#pragma once

#include <CLI/CLI.hpp>

namespace attn::tools {

// Adds the subcommand to `app`; when it runs, it sets `status` to the process's
// exit status.
void add_train_command(CLI::App& app, int& status);

}  // namespace attn::tools
