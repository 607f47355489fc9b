// `attn heatmap FILE.npy`: the attention weights that numpy saved, drawn by
// attn::plot::heatmaps as a PNG, SVG or PDF picture.
#pragma once

#include <CLI/CLI.hpp>

namespace attn::tools {

// Adds the subcommand to `app`; when it runs, it sets `status` to the process's exit
// status. Errors (a file that cannot be read, options that do not fit the array)
// are thrown as attn::Error out of app.parse.
void add_heatmap_command(CLI::App& app, int& status);

}  // namespace attn::tools
