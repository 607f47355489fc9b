// attn::plot::heatmaps: pictures read back (PNG through cairo, SVG through xmllint and
// rsvg-convert, PDF through pdftoppm), cell colours, grid geometry, block means, and errors.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "attn/plot.hpp"
#include "attn/rng.hpp"
#include "attn/tensor.hpp"
#include "picture_util.hpp"
#include "test_util.hpp"

using attn::Rng;
using attn::test::error_of;
using attn::test::read_file;
using attn::test::test_dir;
using attn::Tensor;
using attn::plot::Colormap;
using attn::plot::colormap_color;
using attn::plot::Figure;
using attn::plot::HeatmapOptions;
using attn::plot::heatmaps;
using attn::plot::Rgb;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::StartsWith;

namespace fs = std::filesystem;

namespace {

using attn::test::hex;
using attn::test::Image;
using attn::test::read_file;
using attn::test::quoted;
using attn::test::read_png;
using attn::test::run_tool;
using attn::test::test_dir;

// The pixel at the centre of cell (i, j) of panel (row, col).
Rgb cell(const Image& image, const Figure& fig, int i, int j, int row = 0, int col = 0) {
  const attn::plot::PanelGeometry g = fig.panel(row, col);
  return image.at(g.x + j * g.cell_pixels + g.cell_pixels / 2,
                  g.y + i * g.cell_pixels + g.cell_pixels / 2);
}

}  // namespace

TEST(PlotColormap, EndsAreTheNamedColours) {
  // matplotlib's viridis runs from #440154 to #fde725; ColorBrewer's Reds from
  // #fff5f0 to #67000d.
  EXPECT_EQ(hex(colormap_color(Colormap::viridis, 0.0)), "#440154");
  EXPECT_EQ(hex(colormap_color(Colormap::viridis, 1.0)), "#fde725");
  EXPECT_EQ(hex(colormap_color(Colormap::reds, 0.0)), "#fff5f0");
  EXPECT_EQ(hex(colormap_color(Colormap::reds, 1.0)), "#67000d");
  // Clamped outside [0, 1]; viridis(0.5) is matplotlib's #21918c, within rounding.
  EXPECT_EQ(colormap_color(Colormap::viridis, -3.0), colormap_color(Colormap::viridis, 0.0));
  EXPECT_EQ(colormap_color(Colormap::viridis, 7.0), colormap_color(Colormap::viridis, 1.0));
  const Rgb mid = colormap_color(Colormap::viridis, 0.5);
  EXPECT_NEAR(mid.r, 0x21, 2);
  EXPECT_NEAR(mid.g, 0x91, 2);
  EXPECT_NEAR(mid.b, 0x8c, 2);
  // Reds gets darker monotonically (sum of channels).
  int previous = 3 * 256;
  for (int k = 0; k <= 20; ++k) {
    const Rgb c = colormap_color(Colormap::reds, k / 20.0);
    const int sum = c.r + c.g + c.b;
    EXPECT_LT(sum, previous) << k;
    previous = sum;
  }
}

TEST(PlotPng, DiagonalCellsHaveTheColormapEnds) {
  const fs::path dir = test_dir();
  for (Colormap map : {Colormap::viridis, Colormap::reds}) {
    const Tensor eye = Tensor::from({4, 4}, {1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1});
    const Figure fig = heatmaps(eye, {.colormap = map});
    const fs::path path = dir / "eye.png";
    fig.save(path.string());
    const Image image = read_png(path);
    ASSERT_EQ(image.width, fig.width());
    ASSERT_EQ(image.height, fig.height());
    const attn::plot::PanelGeometry g = fig.panel(0, 0);
    EXPECT_EQ(g.shown_rows, 4);
    EXPECT_EQ(g.shown_cols, 4);
    EXPECT_EQ(g.width, 4 * g.cell_pixels);
    EXPECT_GE(g.cell_pixels, 8);  // auto: a small matrix gets big cells
    EXPECT_LE(g.x + g.width, image.width);
    EXPECT_LE(g.y + g.height, image.height);
    const Rgb hi = colormap_color(map, 1.0), lo = colormap_color(map, 0.0);
    for (int i = 0; i < 4; ++i)
      for (int j = 0; j < 4; ++j)
        EXPECT_EQ(hex(cell(image, fig, i, j)), hex(i == j ? hi : lo)) << i << ", " << j;
    // The cell's corners too: a cell is filled, not just its centre.
    EXPECT_EQ(hex(image.at(g.x, g.y)), hex(hi));
    EXPECT_EQ(hex(image.at(g.x + g.width - 1, g.y + g.height - 1)), hex(hi));
    // The background is white, and the colorbar holds both ends.
    EXPECT_EQ(hex(image.at(0, 0)), "#ffffff");
  }
}

TEST(PlotPng, MaskedKeyColumnHasTheZeroColour) {
  // Softmax rows over keys 0, 1, 3, 4: key 2 is masked out (weight 0).
  Rng rng(7);
  Tensor w = Tensor::rand({5, 5}, rng);
  for (int i = 0; i < 5; ++i) {
    w(i, 2) = 0.0f;
    float sum = 0;
    for (int j = 0; j < 5; ++j) sum += w(i, j);
    for (int j = 0; j < 5; ++j) w(i, j) /= sum;
  }
  const Figure fig = heatmaps(w, {.colormap = Colormap::reds});
  const fs::path path = test_dir() / "masked.png";
  fig.save(path.string());
  const Image image = read_png(path);
  const Rgb zero = colormap_color(Colormap::reds, 0.0);
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(hex(cell(image, fig, i, 2)), hex(zero)) << "row " << i;
    EXPECT_NE(hex(cell(image, fig, i, 0)), hex(zero)) << "row " << i;
  }
  // The largest weight is the top of the scale.
  int argmax = 0;
  const std::vector<float> v = w.to_vector();
  for (int k = 1; k < 25; ++k)
    if (v[k] > v[argmax]) argmax = k;
  EXPECT_EQ(hex(cell(image, fig, argmax / 5, argmax % 5)), hex(colormap_color(Colormap::reds, 1.0)));
}

TEST(PlotPng, GridOfPanelsInRowMajorOrder) {
  // Panel (r, c) has a single hot cell at (r, c): the panel order is visible.
  Tensor w = Tensor::zeros({2, 3, 4, 4});
  for (int r = 0; r < 2; ++r)
    for (int c = 0; c < 3; ++c) w(r, c, r, c) = 1.0f;
  const HeatmapOptions options{.cell_pixels = 10};
  const Figure grid = heatmaps(w, options);
  const Figure one = heatmaps(w.select(0, 0).select(0, 0), options);
  EXPECT_EQ(grid.rows(), 2);
  EXPECT_EQ(grid.cols(), 3);
  EXPECT_EQ(one.rows(), 1);
  // Each extra column adds a panel and a gap; each extra row a panel and a gap.
  const int dx = grid.panel(0, 1).x - grid.panel(0, 0).x;
  const int dy = grid.panel(1, 0).y - grid.panel(0, 0).y;
  EXPECT_GT(dx, 40);
  EXPECT_GT(dy, 40);
  EXPECT_EQ(grid.panel(0, 2).x - grid.panel(0, 1).x, dx);
  EXPECT_EQ(grid.panel(1, 2).y, grid.panel(1, 0).y);
  EXPECT_EQ(grid.width() - one.width(), 2 * dx);
  EXPECT_EQ(grid.height() - one.height(), dy);

  const fs::path path = test_dir() / "grid.png";
  grid.save(path.string());
  const Image image = read_png(path);
  ASSERT_EQ(image.width, grid.width());
  ASSERT_EQ(image.height, grid.height());
  const std::string hi = hex(colormap_color(Colormap::viridis, 1.0));
  for (int r = 0; r < 2; ++r)
    for (int c = 0; c < 3; ++c)
      for (int i = 0; i < 4; ++i)
        for (int j = 0; j < 4; ++j)
          EXPECT_EQ(hex(cell(image, grid, i, j, r, c)) == hi, i == r && j == c)
              << "panel " << r << ", " << c << " cell " << i << ", " << j;

  // A (rows, Lq, Lk) tensor is a column of panels.
  const Figure column = heatmaps(w.select(0, 0), options);
  EXPECT_EQ(column.rows(), 3);
  EXPECT_EQ(column.cols(), 1);
}

TEST(PlotPng, StridedViewDrawsLikeItsCopy) {
  Rng rng(3);
  const Tensor w = Tensor::rand({6, 9}, rng);
  const Tensor t = w.transpose(0, 1);  // (9, 6), strides (1, 9)
  const fs::path dir = test_dir();
  heatmaps(t).save((dir / "view.png").string());
  heatmaps(t.clone()).save((dir / "copy.png").string());
  const Image a = read_png(dir / "view.png"), b = read_png(dir / "copy.png");
  ASSERT_EQ(a.width, b.width);
  ASSERT_EQ(a.height, b.height);
  EXPECT_TRUE(a.pixels == b.pixels);
}

TEST(PlotPng, TitlesAndTokensTakeRoomAndInk) {
  const Tensor w = Tensor::full({1, 2, 3, 3}, 1.0f / 3);
  const HeatmapOptions plain{.cell_pixels = 20};
  HeatmapOptions titled = plain;
  titled.titles = {"Head 1", "Head 2"};
  HeatmapOptions tokens = plain;
  tokens.x_tokens = {"the", "quick", "brownish"};
  tokens.y_tokens = {"le", "renard", "brunâtre"};
  const Figure a = heatmaps(w, plain), b = heatmaps(w, titled), c = heatmaps(w, tokens);
  EXPECT_GT(b.panel(0, 0).y, a.panel(0, 0).y);  // a title band above the panels
  EXPECT_GT(c.height(), a.height());            // upright key tokens under the panels
  EXPECT_GT(c.panel(0, 0).x, a.panel(0, 0).x);  // long query tokens left of them

  // The title band holds dark pixels (glyphs) above each panel.
  const fs::path path = test_dir() / "titled.png";
  b.save(path.string());
  const Image image = read_png(path);
  for (int col = 0; col < 2; ++col) {
    const attn::plot::PanelGeometry g = b.panel(0, col);
    int ink = 0;
    for (int y = 0; y < g.y - 2; ++y)
      for (int x = g.x; x < g.x + g.width; ++x) {
        const Rgb p = image.at(x, y);
        ink += p.r + p.g + p.b < 3 * 128;
      }
    EXPECT_GT(ink, 10) << "panel " << col;
  }
}

namespace {

// The diagonal of a 3 x 3 identity, read back from a picture of it: the cells keep
// the colormap's ends whichever surface drew them.
void expect_diagonal(const Image& image, const Figure& fig, const std::string& via) {
  ASSERT_EQ(image.width, fig.width()) << via;
  ASSERT_EQ(image.height, fig.height()) << via;
  const Rgb hi = colormap_color(Colormap::viridis, 1.0), lo = colormap_color(Colormap::viridis, 0.0);
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j) {
      const Rgb got = cell(image, fig, i, j), want = i == j ? hi : lo;
      EXPECT_NEAR(got.r, want.r, 2) << via << " cell " << i << ", " << j;
      EXPECT_NEAR(got.g, want.g, 2) << via << " cell " << i << ", " << j;
      EXPECT_NEAR(got.b, want.b, 2) << via << " cell " << i << ", " << j;
    }
}

const Tensor& eye3() {
  static const Tensor eye = Tensor::from({3, 3}, {1, 0, 0, 0, 1, 0, 0, 0, 1});
  return eye;
}

}  // namespace

TEST(PlotSvg, ParsesAndRendersWithLabelsAndTitles) {
  // cairo's SVG surface writes text as glyph outlines (<symbol> + <use>), not <text>.
  // So: xmllint parses the file, its <title> (written from Figure::description) names
  // the labels and titles, it has one <use> per drawn character, and rsvg-convert
  // renders it to the picture's size with the cells' colours.
  const Tensor w = Tensor::full({1, 2, 3, 3}, 1.0f / 3);
  const Figure fig = heatmaps(w, {.xlabel = "Keys here", .ylabel = "Queries there",
                                  .titles = {"Head <1>", "Head & 2"}});
  const fs::path path = test_dir() / "w.svg";
  fig.save(path.string());
  const std::string svg = read_file(path);
  EXPECT_THAT(svg, StartsWith("<?xml"));
  EXPECT_THAT(svg, HasSubstr("width=\"" + std::to_string(fig.width()) + "px\""));
  EXPECT_THAT(svg, HasSubstr("height=\"" + std::to_string(fig.height()) + "px\""));
  EXPECT_THAT(svg, HasSubstr("<image"));  // the panels and the colorbar
  const std::size_t title_at = svg.find("<title>");
  ASSERT_NE(title_at, std::string::npos);
  const std::string title = svg.substr(title_at, svg.find("</title>") - title_at);
  for (const char* part : {"Keys here", "Queries there", "Head &lt;1&gt;", "Head &amp; 2", "1 x 2 panels"})
    EXPECT_THAT(title, HasSubstr(part));
  // Glyphs drawn: at least one <use> per non-space character of labels and titles.
  std::size_t uses = 0;
  for (std::size_t at = svg.find("<use"); at != std::string::npos; at = svg.find("<use", at + 1)) ++uses;
  EXPECT_GE(uses, std::string("KeyshereQueriesthereHead<1>Head&2").size());
  EXPECT_EQ(run_tool("xmllint --noout " + quoted(path)), "");

  const fs::path eye_svg = test_dir() / "eye.svg", rendered = test_dir() / "eye-svg.png";
  const Figure eye = heatmaps(eye3());
  eye.save(eye_svg.string());
  EXPECT_EQ(run_tool("rsvg-convert --format png --output " + quoted(rendered) + " " + quoted(eye_svg)), "");
  expect_diagonal(read_png(rendered), eye, "rsvg-convert");
}

TEST(PlotPdf, OpensAndRendersAtItsSize) {
  // pdftoppm renders the PDF at 72 dpi, one pixel per point: the page is the
  // picture's size and the cells keep their colours.
  const Figure fig = heatmaps(eye3(), {.titles = {"identity"}});
  const fs::path path = test_dir() / "eye.PDF";  // the extension is case-insensitive
  fig.save(path.string());
  const std::string pdf = read_file(path);
  EXPECT_THAT(pdf, StartsWith("%PDF-"));
  EXPECT_THAT(pdf, HasSubstr("/Creator (attn)"));
  const fs::path prefix = test_dir() / "eye-pdf";
  EXPECT_EQ(run_tool("pdftoppm -png -r 72 -singlefile " + quoted(path) + " " + quoted(prefix)), "");
  expect_diagonal(read_png(prefix.string() + ".png"), fig, "pdftoppm");
  // Its title is the figure's description (pdfinfo comes with pdftoppm).
  EXPECT_THAT(run_tool("pdfinfo " + quoted(path), /*want_output=*/true),
              HasSubstr("Attention weights: 1 x 1 panel of 3 x 3"));
}

TEST(PlotBlockMeans, CellsAreTheMeansOfTheirBlocks) {
  // 8 x 8 shown as 4 x 4: each cell is the mean of a 2 x 2 block.
  Tensor w = Tensor::zeros({8, 8});
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 2; ++j) w(i, j) = 1.0f;  // block (0, 0): mean 1
  w(2, 2) = 1.0f;
  w(3, 3) = 1.0f;  // block (1, 1): mean 0.5
  w(4, 6) = 1.0f;  // block (2, 3): mean 0.25
  const Figure fig = heatmaps(w, {.colormap = Colormap::reds, .vmin = 0.0f, .vmax = 1.0f,
                                  .cell_pixels = 5, .max_panel_pixels = 4});
  EXPECT_EQ(fig.panel(0, 0).shown_rows, 4);
  EXPECT_EQ(fig.panel(0, 0).shown_cols, 4);
  EXPECT_EQ(fig.panel(0, 0).width, 20);
  EXPECT_THAT(fig.description(), HasSubstr("8 x 8 shown as 4 x 4 block means"));
  const fs::path path = test_dir() / "means.png";
  fig.save(path.string());
  const Image image = read_png(path);
  EXPECT_EQ(hex(cell(image, fig, 0, 0)), hex(colormap_color(Colormap::reds, 1.0)));
  EXPECT_EQ(hex(cell(image, fig, 1, 1)), hex(colormap_color(Colormap::reds, 0.5)));
  EXPECT_EQ(hex(cell(image, fig, 2, 3)), hex(colormap_color(Colormap::reds, 0.25)));
  EXPECT_EQ(hex(cell(image, fig, 3, 0)), hex(colormap_color(Colormap::reds, 0.0)));
  // Uneven blocks: 7 x 5 shown as 3 x 3 still covers every element once.
  const Figure uneven = heatmaps(Tensor::full({7, 5}, 0.5f), {.max_panel_pixels = 3});
  EXPECT_EQ(uneven.panel(0, 0).shown_rows, 3);
  EXPECT_EQ(uneven.panel(0, 0).shown_cols, 3);
  EXPECT_THAT(uneven.description(), HasSubstr("7 x 5 shown as 3 x 3 block means"));
}

TEST(PlotBlockMeans, LargeMatrixRendersAtTheOutputResolution) {
  // 4096 x 4096 is read once into 512 x 512 means; the timing is for a benchmark.
  Rng rng(11);
  const Tensor w = Tensor::rand({4096, 4096}, rng);
  const Figure fig = heatmaps(w);
  const attn::plot::PanelGeometry g = fig.panel(0, 0);
  EXPECT_EQ(g.shown_rows, 512);
  EXPECT_EQ(g.shown_cols, 512);
  EXPECT_EQ(g.cell_pixels, 1);
  EXPECT_THAT(fig.description(), HasSubstr("4096 x 4096 shown as 512 x 512 block means"));
  const fs::path path = test_dir() / "large.png";
  fig.save(path.string());
  const Image image = read_png(path);
  EXPECT_EQ(image.width, fig.width());
  EXPECT_EQ(image.height, fig.height());
  EXPECT_LT(image.width, 800);
  // Means of 64 uniform values sit near 0.5 of a scale that ends at their maximum:
  // no cell is at the low end of the colormap.
  EXPECT_NE(hex(cell(image, fig, 100, 100)), hex(colormap_color(Colormap::viridis, 0.0)));
}

TEST(PlotErrors, NameTheArgumentAndShapes) {
  Rng rng(5);
  const Tensor w = Tensor::rand({2, 3, 4}, rng);
  EXPECT_THAT(error_of([&] { heatmaps(Tensor::zeros({4})); }),
              AllOf(HasSubstr("[heatmaps] weights"), HasSubstr("rank 1"), HasSubstr("(4)")));
  EXPECT_THAT(error_of([&] { heatmaps(Tensor::zeros({1, 1, 1, 2, 2})); }),
              AllOf(HasSubstr("rank 5"), HasSubstr("(1, 1, 1, 2, 2)")));
  EXPECT_THAT(error_of([&] { heatmaps(Tensor::zeros({2, 0, 3})); }),
              AllOf(HasSubstr("empty"), HasSubstr("(2, 0, 3)")));

  Tensor bad = w.clone();
  bad(1, 2, 3) = std::nanf("");
  EXPECT_THAT(error_of([&] { heatmaps(bad); }),
              AllOf(HasSubstr("non-finite"), HasSubstr("nan"), HasSubstr("(1, 2, 3)"),
                    HasSubstr("(2, 3, 4)")));
  bad(1, 2, 3) = 0.5f;
  bad(0, 1, 0) = INFINITY;
  EXPECT_THAT(error_of([&] { heatmaps(bad); }), AllOf(HasSubstr("inf"), HasSubstr("(0, 1, 0)")));

  EXPECT_THAT(error_of([&] { heatmaps(w, {.x_tokens = {"a", "b", "c"}}); }),
              AllOf(HasSubstr("x_tokens"), HasSubstr("3 labels for 4 keys"), HasSubstr("(2, 3, 4)")));
  EXPECT_THAT(error_of([&] { heatmaps(w, {.y_tokens = {"a", "b"}}); }),
              AllOf(HasSubstr("y_tokens"), HasSubstr("2 labels for 3 queries"), HasSubstr("(2, 3, 4)")));
  EXPECT_THAT(error_of([&] { heatmaps(w, {.titles = {"only one"}}); }),
              AllOf(HasSubstr("titles"), HasSubstr("1 titles for 2 panels"), HasSubstr("(2, 3, 4)")));
  EXPECT_THAT(error_of([&] { heatmaps(w, {.vmin = 0.5f, .vmax = 0.5f}); }),
              AllOf(HasSubstr("vmin 0.5"), HasSubstr("vmax 0.5")));
  EXPECT_THAT(error_of([&] { heatmaps(w, {.vmax = NAN}); }), HasSubstr("vmax: must be finite"));
  EXPECT_THAT(error_of([&] { heatmaps(w, {.cell_pixels = -1}); }), HasSubstr("cell_pixels"));
  EXPECT_THAT(error_of([&] { heatmaps(w, {.max_panel_pixels = 0}); }), HasSubstr("max_panel_pixels"));
  EXPECT_THAT(error_of([&] { heatmaps(Tensor::zeros({40, 200, 8, 8})); }),
              AllOf(HasSubstr("32767"), HasSubstr("(40, 200, 8, 8)")));

  const Figure fig = heatmaps(w);
  const fs::path dir = test_dir();
  EXPECT_THAT(error_of([&] { fig.save((dir / "w.bmp").string()); }),
              AllOf(HasSubstr("[Figure::save]"), HasSubstr("w.bmp"), HasSubstr("'.bmp'"),
                    HasSubstr(".png, .svg or .pdf")));
  EXPECT_THAT(error_of([&] { fig.save((dir / "no_extension").string()); }),
              HasSubstr("unknown extension ''"));
  EXPECT_THAT(error_of([&] { fig.save((dir / "missing" / "w.png").string()); }),
              AllOf(HasSubstr("cannot open for writing"), HasSubstr("missing/w.png")));
  EXPECT_FALSE(fs::exists(dir / "w.bmp"));
  EXPECT_THAT(error_of([&] { fig.panel(0, 1); }), HasSubstr("(0, 1) is outside the 2 x 1 grid"));
  EXPECT_THAT(error_of([&] { fig.panel(2, 0); }), HasSubstr("(2, 0) is outside"));
}
