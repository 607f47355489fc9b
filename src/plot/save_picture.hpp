// save_picture: the one place that writes PNG, SVG and PDF. Every picture of
// attn::plot (heatmaps, the network) is a draw function over a cairo context of
// width x height; this picks the surface by the file extension, runs it, adds the
// description (SVG <title>, PDF title) and writes the file.
#pragma once

#include <cairo.h>

#include <functional>
#include <string>
#include <string_view>

namespace attn::plot {

// Writes the picture drawn by `draw` to `path`: .png (pixels), .svg or .pdf
// (vectors), case-insensitive. The file is made in memory first, so a failed draw
// leaves no half file. Throws attn::Error "[<op>] path '...': ..." for an unknown
// extension, a size cairo cannot hold, a failed draw or a path that cannot be written.
void save_picture(const std::string& path, int width, int height, const std::string& description,
                  std::string_view op, const std::function<void(cairo_t*)>& draw);

}  // namespace attn::plot
