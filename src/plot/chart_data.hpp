// What a LineChart holds: its panels and every position and text, placed once by
// layout_chart, so that PNG, SVG and PDF are drawn by draw_chart from the same numbers.
#pragma once

#include <cairo.h>

#include <string>
#include <vector>

#include "attn/plot_chart.hpp"
#include "plot/text.hpp"

namespace attn::plot {

inline constexpr double kLegendSample = 24;  // the line before a legend label

struct ChartLegendEntry {
  std::string label;
  Rgb color;
  bool dashed = false;
  double x = 0, y = 0;  // left end of its line sample, on the text's middle
};

struct LineChart::Data {
  std::vector<ChartPanel> panels;
  std::vector<std::vector<Rgb>> colors;                      // [panel][series]
  std::vector<Area> areas;                                   // [panel]
  std::vector<std::vector<std::vector<ChartPoint>>> points;  // [panel][series][i]
  std::vector<double> reference_rows;  // [panel]: the row of its reference line, if any
  std::vector<double> y_ticks;         // the horizontal grid lines, down from each area's top
  std::vector<double> x_ticks;         // the x ticks, right of each area's left edge
  std::vector<ChartLegendEntry> legend;
  std::vector<Text> texts;
  double y_max = 1;
  int width = 0, height = 0;
  std::string description;
};

LineChart::Data layout_chart(const std::vector<ChartPanel>& panels, const ChartOptions& options);
void draw_chart(cairo_t* cr, const LineChart::Data& d);

}  // namespace attn::plot
