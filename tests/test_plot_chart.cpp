// attn::plot::line_chart: the picture read back (PNG through cairo, SVG through
// xmllint and rsvg-convert, PDF through pdftoppm), markers where point() says and lines
// between them, the reference line on its row, panels in a grid, and the errors.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <limits>
#include <string>
#include <vector>

#include "attn/plot_chart.hpp"
#include "picture_util.hpp"
#include "test_util.hpp"

using attn::plot::ChartOptions;
using attn::plot::ChartPanel;
using attn::plot::ChartSeries;
using attn::plot::LineChart;
using attn::plot::Rgb;
using attn::test::error_of;
using attn::test::Image;
using attn::test::quoted;
using attn::test::read_file;
using attn::test::read_png;
using attn::test::run_tool;
using attn::test::test_dir;
using ::testing::HasSubstr;

namespace fs = std::filesystem;

namespace {

constexpr Rgb kRed{220, 20, 20}, kBlue{20, 20, 220};

// Two series; the peak at 100 lies above every point, so its row holds only the
// dashed line (and the grid's light grey).
ChartPanel panel(const std::string& title) {
  ChartPanel p{.title = title, .reference_y = 100.0, .reference_label = "peak 100"};
  p.series.push_back(
      {.label = "fused", .x = {512, 1024, 2048, 4096}, .y = {20, 40, 60, 80}, .color = kRed});
  p.series.push_back({.label = "baseline",
                      .x = {512, 1024, 2048, 4096},
                      .y = {10, 12, 14, 15},
                      .color = kBlue,
                      .dashed = true});
  return p;
}

const ChartOptions kOptions{.title = "Attention forward", .xlabel = "L", .ylabel = "GFLOP/s"};

bool near(Rgb a, Rgb b, int tolerance) {
  return std::abs(a.r - b.r) <= tolerance && std::abs(a.g - b.g) <= tolerance &&
         std::abs(a.b - b.b) <= tolerance;
}

// The marker of every point has its series' colour at its centre.
void expect_markers(const Image& image, const LineChart& chart, std::size_t panels,
                    const std::string& what) {
  for (std::size_t p = 0; p < panels; ++p)
    for (std::size_t s = 0; s < 2; ++s)
      for (std::size_t i = 0; i < 4; ++i) {
        const auto pt = chart.point(p, s, i);
        const Rgb want = s == 0 ? kRed : kBlue;
        EXPECT_TRUE(near(image.at(static_cast<int>(pt.x), static_cast<int>(pt.y)), want, 40))
            << what << ": panel " << p << " series " << s << " point " << i << " at (" << pt.x
            << ", " << pt.y << ")";
      }
}

// The solid series (0) is inked between its points too: at the midpoint of each segment.
void expect_solid_lines(const Image& image, const LineChart& chart, std::size_t panels,
                        const std::string& what) {
  for (std::size_t p = 0; p < panels; ++p)
    for (std::size_t i = 0; i + 1 < 4; ++i) {
      const auto a = chart.point(p, 0, i), b = chart.point(p, 0, i + 1);
      const int x = static_cast<int>((a.x + b.x) / 2), y = static_cast<int>((a.y + b.y) / 2);
      EXPECT_TRUE(near(image.at(x, y), kRed, 60))
          << what << ": panel " << p << " segment " << i << " at (" << x << ", " << y << ")";
    }
}

// The reference line: the first dash starts at the area's left edge, so the pixels
// just right of it on the line's row are grey, and the rows 4 above and below white.
void expect_reference_line(const Image& image, const LineChart& chart, std::size_t p,
                           const std::string& what) {
  const int row = static_cast<int>(std::floor(chart.reference_row(p)));
  const int x = static_cast<int>(chart.area(p).left) + 3;
  const Rgb on = image.at(x, row);
  EXPECT_LT(on.r + on.g + on.b, 3 * 180) << what << ": panel " << p << " row " << row;
  EXPECT_EQ(image.at(x, row - 4), (Rgb{255, 255, 255})) << what;
  EXPECT_EQ(image.at(x, row + 4), (Rgb{255, 255, 255})) << what;
}

// A picture of `chart` read back: its size, then the markers, lines and peak line of
// each of its `panels` panels where the chart says they are.
void expect_chart_drawn(const Image& image, const LineChart& chart, std::size_t panels,
                        const std::string& what) {
  ASSERT_EQ(image.width, chart.width()) << what;
  ASSERT_EQ(image.height, chart.height()) << what;
  expect_markers(image, chart, panels, what);
  expect_solid_lines(image, chart, panels, what);
  for (std::size_t p = 0; p < panels; ++p) expect_reference_line(image, chart, p, what);
}

TEST(PlotChart, PngHasTheReportedSizeMarkersAndPeakLine) {
  const LineChart chart = attn::plot::line_chart({panel("D = 64")}, kOptions);
  const fs::path path = test_dir() / "chart.png";
  chart.save(path.string());
  expect_chart_drawn(read_png(path), chart, 1, "png");
}

TEST(PlotChart, PointsArePlacedOnALog2AxisAndALinearY) {
  const LineChart chart = attn::plot::line_chart({panel("D = 64")}, kOptions);
  // Doubling L is one equal step to the right; y = 40 is twice as high as y = 20.
  const auto p0 = chart.point(0, 0, 0), p1 = chart.point(0, 0, 1), p2 = chart.point(0, 0, 2);
  EXPECT_NEAR(p1.x - p0.x, p2.x - p1.x, 1e-9);
  const double bottom = chart.area(0).bottom;
  EXPECT_NEAR(bottom - p1.y, 2 * (bottom - p0.y), 1e-9);
  // The y axis starts at 0 and its top is above the peak.
  EXPECT_GE(chart.y_max(), 100);
  EXPECT_NEAR(chart.reference_row(0),
              bottom - 100 / chart.y_max() * (chart.area(0).bottom - chart.area(0).top), 1e-9);
}

TEST(PlotChart, PanelsFillAGridRowByRow) {
  ChartOptions options = kOptions;
  options.columns = 2;
  const LineChart chart = attn::plot::line_chart({panel("a"), panel("b"), panel("c")}, options);
  EXPECT_EQ(chart.area(0).top, chart.area(1).top);
  EXPECT_LT(chart.area(0).right, chart.area(1).left);
  EXPECT_EQ(chart.area(2).left, chart.area(0).left);
  EXPECT_GT(chart.area(2).top, chart.area(0).bottom);
  const fs::path path = test_dir() / "grid.png";
  chart.save(path.string());
  expect_chart_drawn(read_png(path), chart, 3, "grid");
}

TEST(PlotChart, SvgIsValidAndRendersTheSamePicture) {
  const LineChart chart = attn::plot::line_chart({panel("D = 64")}, kOptions);
  const fs::path dir = test_dir();
  const fs::path path = dir / "chart.svg";
  chart.save(path.string());
  EXPECT_EQ(run_tool("xmllint --noout " + quoted(path)), "");
  EXPECT_THAT(read_file(path), HasSubstr("2 series, GFLOP/s against L (log2 axis)</title>"));
  const fs::path png = dir / "chart_from_svg.png";
  ASSERT_EQ(run_tool("rsvg-convert -o " + quoted(png) + " " + quoted(path)), "");
  expect_chart_drawn(read_png(png), chart, 1, "svg");
}

TEST(PlotChart, PdfOpensAtTheSameSize) {
  const LineChart chart = attn::plot::line_chart({panel("D = 64")}, kOptions);
  const fs::path dir = test_dir();
  const fs::path path = dir / "chart.pdf";
  chart.save(path.string());
  ASSERT_EQ(run_tool("pdftoppm -png -r 72 -singlefile " + quoted(path) + " " +
                     quoted(dir / "chart_from_pdf")),
            "");
  const Image image = read_png(dir / "chart_from_pdf.png");
  ASSERT_EQ(image.width, chart.width());
  ASSERT_EQ(image.height, chart.height());
  expect_markers(image, chart, 1, "pdf");
}

TEST(PlotChart, DescriptionSaysWhatIsDrawn) {
  const LineChart chart = attn::plot::line_chart({panel("D = 64")}, kOptions);
  EXPECT_EQ(chart.description(),
            "Line chart 'Attention forward': 1 panel, 2 series, GFLOP/s against L (log2 axis)");
}

TEST(PlotChart, RejectsBadInput) {
  const auto error = [](std::vector<ChartPanel> panels, ChartOptions options = kOptions) {
    return error_of([&] { attn::plot::line_chart(panels, options); });
  };
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  EXPECT_EQ(error({}), "[line_chart] no panels");
  EXPECT_EQ(error({ChartPanel{.title = "empty"}}), "[line_chart] panel 0 has no series");

  ChartPanel p = panel("p");
  p.series[1].x.clear();
  p.series[1].y.clear();
  EXPECT_EQ(error({p}), "[line_chart] panel 0, series 'baseline' has no points");

  p = panel("p");
  p.series[0].y.pop_back();
  EXPECT_EQ(error({p}), "[line_chart] panel 0, series 'fused': 4 x values, 3 y values");

  p = panel("p");
  p.series[0].x[1] = 0;
  EXPECT_THAT(error({p}), HasSubstr("point 1: x = 0 is not positive, on a log2 axis"));
  ChartOptions linear = kOptions;
  linear.log2_x = false;
  EXPECT_NO_THROW(attn::plot::line_chart({p}, linear));  // 0 is fine on a linear axis

  p = panel("p");
  p.series[0].y[2] = nan;
  EXPECT_THAT(error({p}), HasSubstr("point 2: (2048, nan) is not finite"));
  p = panel("p");
  p.series[1].x[0] = inf;
  EXPECT_THAT(error({p}), HasSubstr("series 'baseline', point 0: (inf, 10) is not finite"));
  p = panel("p");
  p.reference_y = nan;
  EXPECT_EQ(error({p}), "[line_chart] panel 0: reference_y is not finite");

  ChartOptions tiny = kOptions;
  tiny.panel_width = 10;
  EXPECT_THAT(error({panel("p")}, tiny), HasSubstr("panel size 10 x 320 is below 64 pixels"));

  const LineChart chart = attn::plot::line_chart({panel("p")}, kOptions);
  EXPECT_THAT(error_of([&] { chart.save((test_dir() / "chart.bmp").string()); }),
              HasSubstr("LineChart::save"));
}

TEST(PlotChart, SeriesWithoutAColourTakeThePaletteByLabel) {
  ChartPanel p = panel("p");
  for (ChartSeries& s : p.series) s.color.reset();
  const LineChart chart = attn::plot::line_chart({p, p}, kOptions);
  const fs::path path = test_dir() / "palette.png";
  chart.save(path.string());
  const Image image = read_png(path);
  // "fused" is the first label in both panels, "baseline" the second.
  for (std::size_t panel = 0; panel < 2; ++panel)
    for (std::size_t s = 0; s < 2; ++s) {
      const auto pt = chart.point(panel, s, 3);
      EXPECT_TRUE(near(image.at(static_cast<int>(pt.x), static_cast<int>(pt.y)),
                       attn::plot::chart_color(s), 40))
          << "panel " << panel << " series " << s;
    }
  EXPECT_NE(attn::plot::chart_color(0), attn::plot::chart_color(1));
  EXPECT_EQ(attn::plot::chart_color(10), attn::plot::chart_color(0));
}

TEST(PlotChart, ReferenceRowOfAPanelWithoutOneThrows) {
  ChartPanel p = panel("p");
  p.reference_y.reset();
  const LineChart chart = attn::plot::line_chart({p}, kOptions);
  EXPECT_THAT(error_of([&] { chart.reference_row(0); }), HasSubstr("has no reference line"));
}

}  // namespace
