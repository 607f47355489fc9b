// attn::plot: pictures of attention weights, drawn with cairo.
//
// `heatmaps` is d2l's `show_heatmaps(matrices, xlabel, ylabel, titles, cmap)`: a grid
// of panels, one per (Lq, Lk) matrix, with per-panel titles, axis labels, token
// labels and one shared colorbar. The picture is built once and saved as PNG, SVG
// or PDF, chosen by the file extension, through one drawing code path:
//
//   attn::plot::heatmaps(r.weights, {.xlabel = "Keys", .ylabel = "Queries"}).save("w.svg");
//
// Matrices larger than `max_panel_pixels` per side are shown as block means at that
// resolution, and the picture says so ("4096 x 4096 shown as 512 x 512 block
// means"). Memory is bounded by the output: the input is read once, and nothing of
// size Lq x Lk is allocated.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "attn/tensor.hpp"

namespace attn::plot {

enum class Colormap {
  viridis,  // perceptually uniform, dark violet (low) to yellow (high); the default
  reds,     // d2l's cmap="Reds": near white (low) to dark red (high)
};

struct Rgb {
  std::uint8_t r = 0, g = 0, b = 0;
  bool operator==(const Rgb&) const = default;
};

// The colour of `t` (clamped to [0, 1]) under `map`: 0 is the low end, 1 the high end.
Rgb colormap_color(Colormap map, double t);

struct HeatmapOptions {
  std::string xlabel = "Keys";   // under the bottom row of panels
  std::string ylabel = "Queries";  // left of the first column
  // One per panel in row-major order (e.g. "Head 1", ...); empty: no titles.
  std::vector<std::string> titles = {};
  // Token labels for the key (x) and query (y) positions: empty, or exactly Lk
  // (resp. Lq) of them. Without them the axes carry index ticks. When the cells are
  // too small for every label, every k-th label is shown.
  std::vector<std::string> x_tokens = {}, y_tokens = {};
  Colormap colormap = Colormap::viridis;
  // The values at the low and high end of the colormap. Default: min(0, smallest
  // value shown) and the largest value shown (block means when averaged).
  std::optional<float> vmin = std::nullopt, vmax = std::nullopt;
  // Side of one cell in pixels (points for SVG and PDF); 0: chosen so that a panel
  // is about 256 pixels wide, between 1 and 32 per cell.
  int cell_pixels = 0;
  // Larger matrices are block-averaged to at most this many cells per side.
  int max_panel_pixels = 512;
};

// Where a panel sits in the picture, in pixels from the top left, and how many
// cells it shows (fewer than Lq x Lk when block-averaged).
struct PanelGeometry {
  int x = 0, y = 0, width = 0, height = 0;
  std::int64_t shown_rows = 0, shown_cols = 0;
  int cell_pixels = 0;  // each shown cell is cell_pixels x cell_pixels
};

// A picture ready to be saved. Cheap to copy (shares its data).
class Figure {
 public:
  // Writes the picture to `path`; the format follows the extension (case-insensitive):
  // .png (pixels), .svg and .pdf (vectors, with the panels as embedded images).
  // Throws attn::Error for an unknown extension or a path that cannot be written.
  void save(const std::string& path) const;

  int width() const;   // pixels for PNG, points for SVG and PDF
  int height() const;
  int rows() const;    // the grid of panels
  int cols() const;
  PanelGeometry panel(int row, int col) const;
  // One line saying what the picture shows, for alt text; saved as the SVG <title>
  // and the PDF title.
  std::string description() const;

  struct Data;  // the rasters of block means, the labels and the layout

 private:
  friend Figure heatmaps(const Tensor& weights, const HeatmapOptions& options);
  explicit Figure(std::shared_ptr<const Data> data) : data_(std::move(data)) {}
  std::shared_ptr<const Data> data_;
};

// weights: (Lq, Lk), (rows, Lq, Lk) or (rows, cols, Lq, Lk), e.g. (B, H, Lq, Lk) as
// batch x heads; any strides. Values must be finite.
Figure heatmaps(const Tensor& weights, const HeatmapOptions& options = {});

}  // namespace attn::plot
