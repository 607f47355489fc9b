// draw_network: the one drawing path of the network behind PNG, SVG and PDF: the
// boxes (the heads' frame first, dashed), the arrows with filled heads, the texts.
#include <cmath>
#include <numbers>

#include "plot/network_data.hpp"

namespace attn::plot {
namespace {

constexpr double kLineWidth = 1.0;
constexpr double kArrowWidth = 1.5;
constexpr double kHeadLength = 8, kHeadHalfWidth = 3.5;  // the filled arrow head
constexpr double kCorner = 4;                            // radius of a box's corners
constexpr double kFrameDash = 4;

void set_rgb(cairo_t* cr, Rgb c) {
  cairo_set_source_rgb(cr, c.r / 255.0, c.g / 255.0, c.b / 255.0);
}

// A rectangle with rounded corners, its border on the half pixels just inside the box.
void rounded(cairo_t* cr, const NetworkBox& b) {
  const double x0 = b.x + 0.5, y0 = b.y + 0.5, x1 = b.x + b.width - 0.5, y1 = b.y + b.height - 0.5;
  const double r = kCorner, pi = std::numbers::pi;
  cairo_new_sub_path(cr);
  cairo_arc(cr, x1 - r, y0 + r, r, -pi / 2, 0);
  cairo_arc(cr, x1 - r, y1 - r, r, 0, pi / 2);
  cairo_arc(cr, x0 + r, y1 - r, r, pi / 2, pi);
  cairo_arc(cr, x0 + r, y0 + r, r, pi, 3 * pi / 2);
  cairo_close_path(cr);
}

void arrow(cairo_t* cr, const NetworkArrow& a) {
  const double dx = a.x1 - a.x0, dy = a.y1 - a.y0;
  const double len = std::hypot(dx, dy);
  if (len <= 0) return;
  const double ux = dx / len, uy = dy / len;
  // The line stops where the head begins, so the tip stays sharp.
  const double bx = a.x1 - ux * kHeadLength, by = a.y1 - uy * kHeadLength;
  cairo_set_line_width(cr, kArrowWidth);
  cairo_move_to(cr, a.x0, a.y0);
  cairo_line_to(cr, bx, by);
  cairo_stroke(cr);
  cairo_move_to(cr, a.x1, a.y1);
  cairo_line_to(cr, bx - uy * kHeadHalfWidth, by + ux * kHeadHalfWidth);
  cairo_line_to(cr, bx + uy * kHeadHalfWidth, by - ux * kHeadHalfWidth);
  cairo_close_path(cr);
  cairo_fill(cr);
}

}  // namespace

void draw_network(cairo_t* cr, const Network::Data& d) {
  cairo_set_source_rgb(cr, 1, 1, 1);
  cairo_paint(cr);

  cairo_set_line_width(cr, kLineWidth);
  for (std::size_t i = 0; i < d.boxes.size(); ++i) {
    const NetworkBox& b = d.boxes[i];
    rounded(cr, b);
    set_rgb(cr, d.fills[i]);
    cairo_fill_preserve(cr);
    const bool frame = b.name == "heads";
    cairo_set_source_rgb(cr, frame ? 0.55 : 0.2, frame ? 0.55 : 0.2, frame ? 0.55 : 0.2);
    if (frame) cairo_set_dash(cr, &kFrameDash, 1, 0);
    cairo_stroke(cr);
    cairo_set_dash(cr, nullptr, 0, 0);
  }

  cairo_set_source_rgb(cr, 0.13, 0.13, 0.13);
  for (const NetworkArrow& a : d.arrows) arrow(cr, a);

  cairo_set_source_rgb(cr, 0, 0, 0);
  draw_texts(cr, d.texts);
}

}  // namespace attn::plot
