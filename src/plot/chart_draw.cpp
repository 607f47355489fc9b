// draw_chart: the one drawing path of a LineChart behind PNG, SVG and PDF: grid,
// axes, reference lines, series (lines, then markers), legend, texts.
#include <cmath>
#include <numbers>

#include "plot/chart_data.hpp"

namespace attn::plot {
namespace {

constexpr double kAxisWidth = 1.0, kLineWidth = 2.0, kReferenceWidth = 1.5;
constexpr double kMarkerRadius = 3.5, kTickLength = 4;
constexpr double kSeriesDash[] = {6, 3};
constexpr double kReferenceDash[] = {6, 4};
constexpr Rgb kGrid{232, 232, 232}, kAxis{0, 0, 0}, kReference{96, 96, 96};

void set_rgb(cairo_t* cr, Rgb c) {
  cairo_set_source_rgb(cr, c.r / 255.0, c.g / 255.0, c.b / 255.0);
}

void line(cairo_t* cr, double x0, double y0, double x1, double y1) {
  cairo_move_to(cr, x0, y0);
  cairo_line_to(cr, x1, y1);
  cairo_stroke(cr);
}

// Integer rows and columns of 1-pixel lines sit on half pixels, so they stay sharp.
double half(double v) { return std::floor(v) + 0.5; }

}  // namespace

void draw_chart(cairo_t* cr, const LineChart::Data& d) {
  cairo_set_source_rgb(cr, 1, 1, 1);
  cairo_paint(cr);

  for (std::size_t p = 0; p < d.panels.size(); ++p) {
    const LineChart::Area& a = d.areas[p];
    cairo_set_line_width(cr, kAxisWidth);
    set_rgb(cr, kGrid);
    for (const double y : d.y_ticks) line(cr, a.left, half(a.top + y), a.right, half(a.top + y));
    set_rgb(cr, kAxis);
    cairo_rectangle(cr, half(a.left), half(a.top), std::round(a.right - a.left),
                    std::round(a.bottom - a.top));
    cairo_stroke(cr);
    for (const double y : d.y_ticks)
      line(cr, a.left - kTickLength, half(a.top + y), a.left, half(a.top + y));
    for (const double x : d.x_ticks)
      line(cr, half(a.left + x), a.bottom, half(a.left + x), a.bottom + kTickLength);

    cairo_save(cr);
    cairo_rectangle(cr, a.left, a.top, a.right - a.left, a.bottom - a.top);
    cairo_clip(cr);
    if (d.panels[p].reference_y) {
      set_rgb(cr, kReference);
      cairo_set_line_width(cr, kReferenceWidth);
      cairo_set_dash(cr, kReferenceDash, 2, 0);
      line(cr, a.left, d.reference_rows[p], a.right, d.reference_rows[p]);
      cairo_set_dash(cr, nullptr, 0, 0);
    }
    const auto& series = d.panels[p].series;
    for (std::size_t s = 0; s < series.size(); ++s) {
      const auto& pts = d.points[p][s];
      set_rgb(cr, d.colors[p][s]);
      cairo_set_line_width(cr, kLineWidth);
      if (series[s].dashed) cairo_set_dash(cr, kSeriesDash, 2, 0);
      cairo_move_to(cr, pts[0].x, pts[0].y);
      for (std::size_t i = 1; i < pts.size(); ++i) cairo_line_to(cr, pts[i].x, pts[i].y);
      cairo_stroke(cr);
      cairo_set_dash(cr, nullptr, 0, 0);
      for (const ChartPoint& pt : pts) {
        cairo_new_sub_path(cr);
        cairo_arc(cr, pt.x, pt.y, kMarkerRadius, 0, 2 * std::numbers::pi);
      }
      cairo_fill(cr);
    }
    cairo_restore(cr);
  }

  cairo_set_line_width(cr, kLineWidth);
  for (const ChartLegendEntry& e : d.legend) {
    set_rgb(cr, e.color);
    if (e.dashed) cairo_set_dash(cr, kSeriesDash, 2, 0);
    line(cr, e.x, e.y, e.x + kLegendSample, e.y);
    cairo_set_dash(cr, nullptr, 0, 0);
  }
  set_rgb(cr, kAxis);
  draw_texts(cr, d.texts);
}

}  // namespace attn::plot
