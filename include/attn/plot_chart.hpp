// attn::plot::line_chart: y against x as lines with a marker at each point, in one or
// more panels (in a grid of `columns`) that share both axes, each panel with an optional
// horizontal dashed reference line (e.g. the measured peak), and one legend under
// the panels. The x axis is log2 (ticks at powers of two) or linear.
//
//   attn::plot::ChartPanel panel{.title = "D = 64, 1 thread", .reference_y = 45.2,
//                                .reference_label = "peak 45.2 GFLOP/s"};
//   panel.series.push_back({.label = "fused", .x = {512, 1024}, .y = {20.1, 22.3}});
//   attn::plot::line_chart({panel}, {.title = "Attention forward", .xlabel = "L",
//                                    .ylabel = "GFLOP/s"}).save("bench.svg");
//
// Saved as PNG, SVG or PDF through the same writer as plot::heatmaps.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "attn/plot.hpp"

namespace attn::plot {

struct ChartSeries {
  std::string label{};           // in the legend; series of one label share its entry
  std::vector<double> x{}, y{};  // one point per pair: finite; x > 0 on a log2 axis
  std::optional<Rgb> color{};    // default: chart_color(n) for the n-th new label
  bool dashed = false;
};

struct ChartPanel {
  std::string title{};
  std::vector<ChartSeries> series{};    // at least one, each with at least one point
  std::optional<double> reference_y{};  // a horizontal dashed line across the panel
  std::string reference_label{};        // written above that line
};

struct ChartOptions {
  std::string title{}, xlabel{}, ylabel{};
  bool log2_x = true;
  int panel_width = 420, panel_height = 320;  // the plotting area of each panel, pixels
  int columns = 0;  // panels per row, filled row by row; 0: all in one row
};

// A point of the picture, in pixels from the top left (points for SVG and PDF).
struct ChartPoint {
  double x = 0, y = 0;
};

class LineChart {
 public:
  // Writes the picture to `path`; .png, .svg or .pdf by the extension
  // (case-insensitive). Throws attn::Error for an unknown extension or a path that
  // cannot be written.
  void save(const std::string& path) const;

  int width() const;
  int height() const;
  std::string description() const;  // saved as the SVG <title> and the PDF title

  // Where point i of series s of panel p is drawn (its marker's centre).
  ChartPoint point(std::size_t panel, std::size_t series, std::size_t i) const;
  // The row of the reference line of panel p; throws attn::Error if it has none.
  double reference_row(std::size_t panel) const;
  // The plotting area of panel p: left, top, right, bottom edges.
  struct Area {
    double left = 0, top = 0, right = 0, bottom = 0;
  };
  Area area(std::size_t panel) const;
  // The y axis runs from 0 (or the smallest y, if negative) to this value.
  double y_max() const;

  struct Data;

 private:
  friend LineChart line_chart(const std::vector<ChartPanel>& panels, const ChartOptions& options);
  explicit LineChart(std::shared_ptr<const Data> data) : data_(std::move(data)) {}
  std::shared_ptr<const Data> data_;
};

// The default colours of the series, in order (Tableau's ten, matplotlib's default),
// for callers that colour series of several labels alike; i wraps around.
Rgb chart_color(std::size_t i);

// Throws attn::Error "[line_chart] ..." for no panels, a panel without series, a
// series without points or with x and y of different lengths, a value that is not
// finite (NaN, inf), x <= 0 on a log2 axis, or a panel size below 64 pixels.
LineChart line_chart(const std::vector<ChartPanel>& panels, const ChartOptions& options = {});

}  // namespace attn::plot
