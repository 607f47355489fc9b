// What a Figure holds: the panels' rasters of (block-mean) values and the layout,
// every position and text measured once, so that the PNG, SVG and PDF surfaces are
// drawn by one function from the same numbers.
#pragma once

#include <cairo.h>

#include <cstdint>
#include <string>
#include <vector>

#include "attn/plot.hpp"
#include "plot/text.hpp"

namespace attn::plot {

struct Segment {
  double x0, y0, x1, y1;
};

struct Layout {
  int width = 0, height = 0;
  int cell_pixels = 0;
  int panel_width = 0, panel_height = 0;  // (shown_cols, shown_rows) cells of cell_pixels
  std::vector<int> panel_x;               // left edge of each grid column
  std::vector<int> panel_y;               // top edge of each grid row
  int bar_x = 0, bar_y = 0, bar_width = 0, bar_height = 0;  // the colorbar
  std::vector<Segment> ticks;             // 1-pixel black lines
  std::vector<Text> texts;
};

struct Figure::Data {
  std::int64_t grid_rows = 1, grid_cols = 1;  // panels
  std::int64_t lq = 0, lk = 0;                // each panel's matrix
  std::int64_t shown_rows = 0, shown_cols = 0;  // cells shown per panel (<= lq, lk)
  // (grid_rows * grid_cols, shown_rows, shown_cols): the values, or their block means.
  std::vector<float> values;
  float vmin = 0, vmax = 1;
  Colormap colormap = Colormap::viridis;
  std::string xlabel, ylabel;
  std::vector<std::string> titles;
  std::vector<std::string> x_tokens, y_tokens;
  std::string note;  // "4096 x 4096 shown as 512 x 512 block means", or empty
  Layout layout;

  bool averaged() const { return shown_rows != lq || shown_cols != lk; }
};

// Measures the texts and places everything; fills data.layout. `cell_pixels` > 0.
void compute_layout(Figure::Data& data, int cell_pixels);

// Draws the whole figure on `cr`, whatever its surface.
void draw_figure(cairo_t* cr, const Figure::Data& data);

const char* colormap_name(Colormap map);

}  // namespace attn::plot
