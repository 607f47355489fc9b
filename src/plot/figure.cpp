// Figure: accessors, the description, and save through save_picture, the one
// writer of PNG, SVG and PDF.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "plot/figure_data.hpp"
#include "plot/save_picture.hpp"

namespace attn::plot {

void Figure::save(const std::string& path) const {
  const Figure::Data& d = *data_;
  save_picture(path, d.layout.width, d.layout.height, description(), "Figure::save",
               [&d](cairo_t* cr) { draw_figure(cr, d); });
}

int Figure::width() const { return data_->layout.width; }
int Figure::height() const { return data_->layout.height; }
int Figure::rows() const { return static_cast<int>(data_->grid_rows); }
int Figure::cols() const { return static_cast<int>(data_->grid_cols); }

PanelGeometry Figure::panel(int row, int col) const {
  const Figure::Data& d = *data_;
  if (row < 0 || row >= d.grid_rows || col < 0 || col >= d.grid_cols)
    throw Error(fmt::format("[Figure::panel] ({}, {}) is outside the {} x {} grid of panels", row,
                            col, d.grid_rows, d.grid_cols));
  const Layout& L = d.layout;
  return {L.panel_x[static_cast<std::size_t>(col)], L.panel_y[static_cast<std::size_t>(row)],
          L.panel_width, L.panel_height, d.shown_rows, d.shown_cols, L.cell_pixels};
}

std::string Figure::description() const {
  const Figure::Data& d = *data_;
  std::string s = fmt::format("Attention weights: {} x {} {} of {} x {} ({} x {})", d.grid_rows,
                              d.grid_cols, d.grid_rows * d.grid_cols == 1 ? "panel" : "panels",
                              d.lq, d.lk, d.ylabel.empty() ? "rows" : d.ylabel,
                              d.xlabel.empty() ? "columns" : d.xlabel);
  if (!d.titles.empty()) s += fmt::format(" titled {}", fmt::join(d.titles, ", "));
  s += fmt::format("; {} colour scale from {:g} to {:g}", colormap_name(d.colormap), d.vmin, d.vmax);
  if (!d.note.empty()) s += "; " + d.note;
  return s;
}

}  // namespace attn::plot
