// `attn heatmap FILE.npy`: reads the array with attn::io::read_npy and hands it to
// attn::plot::heatmaps; each option is one field of plot::HeatmapOptions, and
// plot::heatmaps checks them against the array.
//
//   attn heatmap weights.npy -o weights.svg --colormap reds --titles "Head 1,Head 2"
#include "heatmap_command.hpp"

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "attn/io.hpp"
#include "attn/plot.hpp"

namespace attn::tools {
namespace {

struct HeatmapCommand {
  std::string input;                       // the .npy file
  std::string out;                         // empty: `input` with the extension .png
  std::string colormap = "viridis";        // a key of kColormaps
  float vmin = 0, vmax = 0;                // used only when given
  plot::HeatmapOptions plot;               // the options bound as they are
};

const std::map<std::string, plot::Colormap> kColormaps = {{"viridis", plot::Colormap::viridis},
                                                          {"reds", plot::Colormap::reds}};

void run_heatmap(const HeatmapCommand& command, bool has_vmin, bool has_vmax) {
  plot::HeatmapOptions options = command.plot;
  options.colormap = kColormaps.at(command.colormap);  // the CLI checked the name
  if (has_vmin) options.vmin = command.vmin;
  if (has_vmax) options.vmax = command.vmax;

  const Tensor weights = io::read_npy(command.input);
  const plot::Figure figure = plot::heatmaps(weights, options);
  const std::string out = command.out.empty()
                              ? std::filesystem::path(command.input).replace_extension(".png").string()
                              : command.out;
  figure.save(out);
  fmt::print("wrote {}\n{}\n", out, figure.description());
}

}  // namespace

void add_heatmap_command(CLI::App& app, int& status) {
  // Shared with the callback, which outlives this function.
  auto command = std::make_shared<HeatmapCommand>();
  CLI::App* sub = app.add_subcommand(
      "heatmap", "Draw attention weights saved by numpy (.npy) as a PNG, SVG or PDF heatmap");
  sub->add_option("FILE", command->input,
                  "The .npy file: (Lq, Lk) is one panel, (rows, Lq, Lk) a column of panels, "
                  "(rows, cols, Lq, Lk) a grid; any bool, integer or float dtype")
      ->required();
  sub->add_option("-o,--out", command->out,
                  "The picture; .png, .svg or .pdf (default: FILE with the extension .png)")
      ->option_text("FILE");
  sub->add_option("--xlabel", command->plot.xlabel, "Label under the bottom row of panels")
      ->capture_default_str();
  sub->add_option("--ylabel", command->plot.ylabel, "Label left of the first column")
      ->capture_default_str();
  sub->add_option("--titles", command->plot.titles,
                  "One title per panel, in row-major order, separated by commas")
      ->delimiter(',')
      ->option_text("LIST");
  sub->add_option("--x-tokens", command->plot.x_tokens,
                  "Labels of the Lk key positions, separated by commas")
      ->delimiter(',')
      ->option_text("LIST");
  sub->add_option("--y-tokens", command->plot.y_tokens,
                  "Labels of the Lq query positions, separated by commas")
      ->delimiter(',')
      ->option_text("LIST");
  sub->add_option("--colormap", command->colormap, "viridis, or reds (d2l's)")
      ->check(CLI::IsMember(kColormaps))
      ->capture_default_str();
  CLI::Option* vmin = sub->add_option("--vmin", command->vmin,
                                      "Value at the low end of the colormap "
                                      "(default: min(0, smallest value shown))");
  CLI::Option* vmax = sub->add_option("--vmax", command->vmax,
                                      "Value at the high end (default: the largest value shown)");
  sub->add_option("--cell-pixels", command->plot.cell_pixels,
                  "Side of one cell in pixels; 0 chooses (panels about 256 pixels wide)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  sub->add_option("--max-panel-pixels", command->plot.max_panel_pixels,
                  "Larger matrices are shown as block means of at most this many cells per side")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  sub->callback([command, vmin, vmax, &status] {
    run_heatmap(*command, vmin->count() > 0, vmax->count() > 0);
    status = 0;
  });
}

}  // namespace attn::tools
