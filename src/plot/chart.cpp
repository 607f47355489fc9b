// LineChart: attn::plot::line_chart checks its input and places everything once
// (axes, ticks, points, legend); save goes through save_picture, the one writer of
// PNG, SVG and PDF.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>

#include "attn/error.hpp"
#include "plot/chart_data.hpp"
#include "plot/save_picture.hpp"

namespace attn::plot {
namespace {

constexpr double kMargin = 16;
constexpr double kTitleSize = 15, kLabelSize = 12, kTickSize = 10;
constexpr double kTickLength = 4, kGap = 6;
constexpr double kLegendSpacing = 18, kLegendRow = 18;
constexpr int kMinPanelPixels = 64;
constexpr int kTicksWanted = 5;     // about this many y ticks
constexpr double kHeadroom = 1.05;  // the top of the y axis over the largest value

// Tableau's ten colours, the default of matplotlib.
constexpr Rgb kPalette[] = {{31, 119, 180},  {255, 127, 14}, {44, 160, 44},   {214, 39, 40},
                            {148, 103, 189}, {140, 86, 75},  {227, 119, 194}, {127, 127, 127},
                            {188, 189, 34},  {23, 190, 207}};

void check(const std::vector<ChartPanel>& panels, const ChartOptions& options) {
  if (panels.empty()) throw Error("[line_chart] no panels");
  if (options.panel_width < kMinPanelPixels || options.panel_height < kMinPanelPixels)
    throw Error(fmt::format("[line_chart] panel size {} x {} is below {} pixels",
                            options.panel_width, options.panel_height, kMinPanelPixels));
  for (std::size_t p = 0; p < panels.size(); ++p) {
    const ChartPanel& panel = panels[p];
    if (panel.series.empty()) throw Error(fmt::format("[line_chart] panel {} has no series", p));
    if (panel.reference_y && !std::isfinite(*panel.reference_y))
      throw Error(fmt::format("[line_chart] panel {}: reference_y is not finite", p));
    for (const ChartSeries& s : panel.series) {
      if (s.x.empty())
        throw Error(fmt::format("[line_chart] panel {}, series '{}' has no points", p, s.label));
      if (s.x.size() != s.y.size())
        throw Error(fmt::format("[line_chart] panel {}, series '{}': {} x values, {} y values", p,
                                s.label, s.x.size(), s.y.size()));
      for (std::size_t i = 0; i < s.x.size(); ++i) {
        if (!std::isfinite(s.x[i]) || !std::isfinite(s.y[i]))
          throw Error(
              fmt::format("[line_chart] panel {}, series '{}', point {}: ({}, {}) is not "
                          "finite",
                          p, s.label, i, s.x[i], s.y[i]));
        if (options.log2_x && s.x[i] <= 0)
          throw Error(
              fmt::format("[line_chart] panel {}, series '{}', point {}: x = {} is not "
                          "positive, on a log2 axis",
                          p, s.label, i, s.x[i]));
      }
    }
  }
}

// 1, 2, 2.5 or 5 times a power of ten, at least `raw`.
double nice_step(double raw) {
  const double power = std::pow(10.0, std::floor(std::log10(raw)));
  for (const double m : {1.0, 2.0, 2.5, 5.0})
    if (m * power >= raw) return m * power;
  return 10 * power;
}

std::string tick_label(double v) { return fmt::format("{:g}", v); }

}  // namespace

LineChart::Data layout_chart(const std::vector<ChartPanel>& panels, const ChartOptions& options) {
  check(panels, options);
  LineChart::Data d;
  d.panels = panels;
  const auto fx = [&](double x) { return options.log2_x ? std::log2(x) : x; };

  // Ranges over every panel: the panels share both axes.
  double x_lo = INFINITY, x_hi = -INFINITY, y_lo = 0, y_hi = 0;
  for (const ChartPanel& panel : panels) {
    if (panel.reference_y) {
      y_lo = std::min(y_lo, *panel.reference_y);
      y_hi = std::max(y_hi, *panel.reference_y);
    }
    for (const ChartSeries& s : panel.series)
      for (std::size_t i = 0; i < s.x.size(); ++i) {
        x_lo = std::min(x_lo, fx(s.x[i]));
        x_hi = std::max(x_hi, fx(s.x[i]));
        y_lo = std::min(y_lo, s.y[i]);
        y_hi = std::max(y_hi, s.y[i]);
      }
  }
  if (y_hi <= y_lo) y_hi = y_lo + 1;
  const double y_step = nice_step((y_hi - y_lo) * kHeadroom / kTicksWanted);
  const double y_min = std::floor(y_lo / y_step) * y_step;
  d.y_max = std::ceil(y_hi * kHeadroom / y_step) * y_step;
  const double x_pad = x_hi > x_lo ? (options.log2_x ? 0.25 : 0.05 * (x_hi - x_lo)) : 1;
  const double x_min = x_lo - x_pad, x_max = x_hi + x_pad;

  std::vector<double> x_values;  // tick values, in x's own units
  if (options.log2_x) {
    const int first = static_cast<int>(std::ceil(x_min)),
              last = static_cast<int>(std::floor(x_max));
    const int every = (last - first) / 10 + 1;
    for (int e = first; e <= last; e += every) x_values.push_back(std::exp2(e));
  } else {
    const double step = nice_step((x_max - x_min) / kTicksWanted);
    for (double v = std::ceil(x_min / step) * step; v <= x_max + 1e-9 * step; v += step)
      x_values.push_back(v);
  }
  std::vector<double> y_values;
  for (double v = y_min; v <= d.y_max + 1e-9 * y_step; v += y_step) y_values.push_back(v);

  Measure measure;
  double tick_width = 0;
  for (const double v : y_values)
    tick_width = std::max(tick_width, measure.width(tick_label(v), kTickSize));
  const double block = kLabelSize + kGap + tick_width + kTickLength + kGap;  // left of each panel
  const double pw = options.panel_width, ph = options.panel_height;
  const int columns = options.columns > 0
                          ? std::min<int>(options.columns, static_cast<int>(panels.size()))
                          : static_cast<int>(panels.size());
  const double first_top =
      kMargin + (options.title.empty() ? 0 : kTitleSize + kGap) + kLabelSize + kGap;
  // From the top of one grid row's plotting areas to the next: the x tick labels, the
  // x label and the next row's panel titles.
  const double row_step =
      ph + kTickLength + 2 + kTickSize + kGap + kLabelSize + kGap + kLabelSize + kGap;

  const auto column = [&](double x, const LineChart::Area& a) {
    return a.left + (fx(x) - x_min) / (x_max - x_min) * (a.right - a.left);
  };
  const auto row = [&](double y, const LineChart::Area& a) {
    return a.bottom - (y - y_min) / (d.y_max - y_min) * ph;
  };

  // Colours: by each label's first appearance, unless the series names one.
  std::map<std::string, Rgb> label_color;
  std::size_t next_color = 0;
  for (std::size_t p = 0; p < panels.size(); ++p) {
    const double left = kMargin + block + static_cast<double>(p % columns) * (pw + block);
    const double top = first_top + static_cast<double>(p / columns) * row_step;
    const double bottom = top + ph;
    const LineChart::Area a{left, top, left + pw, bottom};
    d.areas.push_back(a);
    d.colors.emplace_back();
    d.points.emplace_back();
    for (const ChartSeries& s : panels[p].series) {
      Rgb color;
      if (s.color) {
        color = *s.color;
      } else if (const auto it = label_color.find(s.label); it != label_color.end()) {
        color = it->second;
      } else {
        color = chart_color(next_color++);
      }
      label_color.emplace(s.label, color);
      d.colors.back().push_back(color);
      std::vector<ChartPoint> pts;
      for (std::size_t i = 0; i < s.x.size(); ++i)
        pts.push_back({column(s.x[i], a), row(s.y[i], a)});
      d.points.back().push_back(std::move(pts));
      const bool known = std::any_of(d.legend.begin(), d.legend.end(),
                                     [&](const ChartLegendEntry& e) { return e.label == s.label; });
      if (!known) d.legend.push_back({s.label, color, s.dashed});
    }
    // Texts of the panel: its title, the tick labels, the reference label.
    const ChartPanel& panel = panels[p];
    d.texts.push_back({panel.title, left + (pw - measure.width(panel.title, kLabelSize)) / 2,
                       top - kGap, kLabelSize});
    for (const double v : y_values) {
      const std::string t = tick_label(v);
      d.texts.push_back({t, left - kTickLength - 2 - measure.width(t, kTickSize),
                         row(v, a) + kTickSize * 0.35, kTickSize});
    }
    for (const double v : x_values) {
      const std::string t = tick_label(v);
      d.texts.push_back({t, column(v, a) - measure.width(t, kTickSize) / 2,
                         bottom + kTickLength + 2 + kTickSize, kTickSize});
    }
    d.reference_rows.push_back(panel.reference_y ? row(*panel.reference_y, a) : 0.0);
    if (panel.reference_y && !panel.reference_label.empty())
      d.texts.push_back({panel.reference_label,
                         a.right - 4 - measure.width(panel.reference_label, kTickSize),
                         row(*panel.reference_y, a) - 4, kTickSize});
    if (!options.xlabel.empty())
      d.texts.push_back({options.xlabel,
                         left + (pw - measure.width(options.xlabel, kLabelSize)) / 2,
                         bottom + kTickLength + 2 + kTickSize + kGap + kLabelSize, kLabelSize});
  }
  for (const double v : y_values) d.y_ticks.push_back(row(v, d.areas[0]) - d.areas[0].top);
  for (const double v : x_values) d.x_ticks.push_back(column(v, d.areas[0]) - d.areas[0].left);

  double width = d.areas[static_cast<std::size_t>(columns - 1)].right + kMargin;
  if (!options.ylabel.empty())
    for (std::size_t p = 0; p < panels.size(); p += static_cast<std::size_t>(columns))
      d.texts.push_back({options.ylabel, kMargin + kLabelSize,
                         d.areas[p].top + (ph + measure.width(options.ylabel, kLabelSize)) / 2,
                         kLabelSize, true});
  const double bottom = d.areas.back().bottom;

  // The legend flows in rows under the x labels.
  double lx = kMargin + block;
  double ly = bottom + kTickLength + 2 + kTickSize + kGap + kLabelSize + kGap + kLegendRow;
  const double legend_right = std::max(width - kMargin, lx + 200);
  for (ChartLegendEntry& e : d.legend) {
    const double w = kLegendSample + kGap + measure.width(e.label, kTickSize);
    if (lx + w > legend_right && lx > kMargin + block) {
      lx = kMargin + block;
      ly += kLegendRow;
    }
    e.x = lx;
    e.y = ly;
    d.texts.push_back({e.label, lx + kLegendSample + kGap, ly + kTickSize * 0.35, kTickSize});
    lx += w + kLegendSpacing;
  }
  if (!options.title.empty()) {
    const double tw = measure.width(options.title, kTitleSize);
    width = std::max(width, tw + 2 * kMargin);
    d.texts.push_back({options.title, (width - tw) / 2, kMargin + kTitleSize, kTitleSize});
  }
  d.width = static_cast<int>(std::ceil(width));
  d.height = static_cast<int>(std::ceil(ly + kLegendRow / 2 + kMargin));

  std::size_t n_series = 0;
  for (const ChartPanel& panel : panels) n_series += panel.series.size();
  d.description = fmt::format(
      "Line chart{}: {} panel{}, {} series, {} against {}{}",
      options.title.empty() ? "" : " '" + options.title + "'", panels.size(),
      panels.size() == 1 ? "" : "s", n_series, options.ylabel.empty() ? "y" : options.ylabel,
      options.xlabel.empty() ? "x" : options.xlabel, options.log2_x ? " (log2 axis)" : "");
  return d;
}

Rgb chart_color(std::size_t i) { return kPalette[i % std::size(kPalette)]; }

LineChart line_chart(const std::vector<ChartPanel>& panels, const ChartOptions& options) {
  return LineChart(std::make_shared<const LineChart::Data>(layout_chart(panels, options)));
}

void LineChart::save(const std::string& path) const {
  const Data& d = *data_;
  save_picture(path, d.width, d.height, d.description, "LineChart::save",
               [&d](cairo_t* cr) { draw_chart(cr, d); });
}

int LineChart::width() const { return data_->width; }
int LineChart::height() const { return data_->height; }
std::string LineChart::description() const { return data_->description; }
double LineChart::y_max() const { return data_->y_max; }

ChartPoint LineChart::point(std::size_t panel, std::size_t series, std::size_t i) const {
  return data_->points.at(panel).at(series).at(i);
}

LineChart::Area LineChart::area(std::size_t panel) const { return data_->areas.at(panel); }

double LineChart::reference_row(std::size_t panel) const {
  if (!data_->panels.at(panel).reference_y)
    throw Error(fmt::format("[LineChart::reference_row] panel {} has no reference line", panel));
  return data_->reference_rows[panel];
}

}  // namespace attn::plot
