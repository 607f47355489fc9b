// draw_figure: the one drawing path behind PNG, SVG and PDF. Panels and the
// colorbar are painted as images of whole pixels at integer positions, so a cell's
// pixels are exactly its colormap colour.
#include <algorithm>
#include <cstdint>
#include <memory>

#include "plot/figure_data.hpp"
#include "plot/text.hpp"

namespace attn::plot {
namespace {

using SurfacePtr = std::unique_ptr<cairo_surface_t, decltype(&cairo_surface_destroy)>;

std::uint32_t argb(Rgb c) {
  return 0xff000000u | (std::uint32_t{c.r} << 16) | (std::uint32_t{c.g} << 8) | c.b;
}

// Paints `image` (width x height pixels) with its top left at (x, y).
void paint_image(cairo_t* cr, cairo_surface_t* image, int x, int y, int width, int height) {
  cairo_save(cr);
  cairo_set_source_surface(cr, image, x, y);
  cairo_pattern_set_filter(cairo_get_source(cr), CAIRO_FILTER_NEAREST);
  cairo_rectangle(cr, x, y, width, height);
  cairo_fill(cr);
  cairo_restore(cr);
}

// A width x height RGB image whose pixel row y is written by fill_row(y, row).
template <class FillRow>
SurfacePtr raster(int width, int height, FillRow&& fill_row) {
  SurfacePtr image(cairo_image_surface_create(CAIRO_FORMAT_RGB24, width, height), cairo_surface_destroy);
  cairo_surface_flush(image.get());
  unsigned char* pixels = cairo_image_surface_get_data(image.get());
  const int stride = cairo_image_surface_get_stride(image.get());
  for (int y = 0; y < height; ++y) fill_row(y, reinterpret_cast<std::uint32_t*>(pixels + y * stride));
  cairo_surface_mark_dirty(image.get());
  return image;
}

// One panel's raster: (shown_rows * cell, shown_cols * cell) pixels.
SurfacePtr panel_image(const Figure::Data& d, const float* values) {
  const Layout& L = d.layout;
  const double scale = 1.0 / (static_cast<double>(d.vmax) - d.vmin);
  return raster(L.panel_width, L.panel_height, [&](int y, std::uint32_t* out) {
    const std::int64_t i = y / L.cell_pixels;  // the shown row this pixel row belongs to
    for (std::int64_t j = 0; j < d.shown_cols; ++j) {
      const double t = (values[i * d.shown_cols + j] - d.vmin) * scale;
      std::fill_n(out + j * L.cell_pixels, L.cell_pixels, argb(colormap_color(d.colormap, t)));
    }
  });
}

// The colorbar: the high end at the top.
SurfacePtr bar_image(const Figure::Data& d) {
  const Layout& L = d.layout;
  return raster(L.bar_width, L.bar_height, [&](int y, std::uint32_t* out) {
    const double t = 1.0 - (y + 0.5) / L.bar_height;
    std::fill_n(out, L.bar_width, argb(colormap_color(d.colormap, t)));
  });
}

void frame(cairo_t* cr, int x, int y, int width, int height) {
  cairo_rectangle(cr, x - 0.5, y - 0.5, width + 1, height + 1);
  cairo_stroke(cr);
}

}  // namespace

void draw_figure(cairo_t* cr, const Figure::Data& d) {
  const Layout& L = d.layout;
  cairo_set_source_rgb(cr, 1, 1, 1);
  cairo_paint(cr);

  const std::size_t panel_cells = static_cast<std::size_t>(d.shown_rows * d.shown_cols);
  for (std::int64_t r = 0; r < d.grid_rows; ++r)
    for (std::int64_t c = 0; c < d.grid_cols; ++c) {
      // One panel's raster at a time: memory stays at one panel's pixels.
      SurfacePtr image =
          panel_image(d, d.values.data() + static_cast<std::size_t>(r * d.grid_cols + c) * panel_cells);
      paint_image(cr, image.get(), L.panel_x[c], L.panel_y[r], L.panel_width, L.panel_height);
    }
  SurfacePtr bar = bar_image(d);
  paint_image(cr, bar.get(), L.bar_x, L.bar_y, L.bar_width, L.bar_height);

  cairo_set_source_rgb(cr, 0, 0, 0);
  cairo_set_line_width(cr, 1);
  for (std::int64_t r = 0; r < d.grid_rows; ++r)
    for (std::int64_t c = 0; c < d.grid_cols; ++c)
      frame(cr, L.panel_x[c], L.panel_y[r], L.panel_width, L.panel_height);
  frame(cr, L.bar_x, L.bar_y, L.bar_width, L.bar_height);
  for (const Segment& s : L.ticks) {
    cairo_move_to(cr, s.x0, s.y0);
    cairo_line_to(cr, s.x1, s.y1);
  }
  cairo_stroke(cr);

  draw_texts(cr, L.texts);
}

}  // namespace attn::plot
