// attn::plot::network: the picture read back (PNG through cairo, SVG through xmllint
// and rsvg-convert, PDF through pdftoppm), boxes and arrows where the network says
// they are, the shape on every edge, many heads, and errors. The external tools are
// required: a missing one fails the test.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "attn/explain.hpp"
#include "attn/plot_network.hpp"
#include "picture_util.hpp"
#include "test_util.hpp"

using attn::MultiHeadSizes;
using attn::Step;
using attn::plot::Network;
using attn::plot::NetworkArrow;
using attn::plot::NetworkBox;
using attn::test::error_of;
using attn::test::HasSubstrs;
using attn::test::Image;
using attn::test::quoted;
using attn::test::run_tool;
using attn::test::read_file;
using attn::test::read_png;
using attn::test::test_dir;
using ::testing::HasSubstr;

namespace fs = std::filesystem;

namespace {

const MultiHeadSizes kDocument000{
    .embed_dim = 100, .num_heads = 5, .batch = 2, .queries = 4, .keys = 6};

Network draw(const MultiHeadSizes& sizes) {
  return attn::plot::network(attn::multi_head_walkthrough(sizes));
}

bool white(const Image& image, int x, int y) {
  const attn::plot::Rgb p = image.at(x, y);
  return p.r == 255 && p.g == 255 && p.b == 255;
}

bool dark(const Image& image, int x, int y) {
  const attn::plot::Rgb p = image.at(x, y);
  return p.r + p.g + p.b < 3 * 128;
}

// Points well inside a box: its centre and four points 6 pixels in from its corners
// (past the rounded corners and the border).
std::vector<std::pair<int, int>> inside(const NetworkBox& b) {
  return {{b.x + b.width / 2, b.y + b.height / 2},
          {b.x + 6, b.y + 6},
          {b.x + b.width - 7, b.y + 6},
          {b.x + 6, b.y + b.height - 7},
          {b.x + b.width - 7, b.y + b.height - 7}};
}

// Every box has its fill (or a glyph) at the points inside it.
void expect_boxes_inked(const Image& image, const Network& net, const std::string& what) {
  for (const NetworkBox& b : net.boxes())
    for (const auto& [x, y] : inside(b))
      EXPECT_FALSE(white(image, x, y))
          << what << ": box " << b.name << " at (" << x << ", " << y << ")";
}

// A dark pixel on the arrow's line at 9 points between its ends, the head excluded.
void expect_arrows_inked(const Image& image, const Network& net, const std::string& what) {
  for (const NetworkArrow& a : net.arrows())
    for (int k = 1; k <= 9; ++k) {
      const double t = 0.1 * k * (1.0 - 9.0 / std::hypot(a.x1 - a.x0, a.y1 - a.y0));
      const int x = static_cast<int>(std::floor(a.x0 + t * (a.x1 - a.x0)));
      const int y = static_cast<int>(std::floor(a.y0 + t * (a.y1 - a.y0)));
      EXPECT_TRUE(dark(image, x, y))
          << what << ": arrow " << a.from << " -> " << a.to << " at (" << x << ", " << y << ")";
    }
}

}  // namespace

TEST(PlotNetwork, BoxesAndArrowsOfDocument000) {
  const Network net = draw(kDocument000);
  EXPECT_EQ(net.heads_drawn(), (std::vector<std::int64_t>{1, 2, 3, 4, 5}));
  // The frame of the heads, three columns of three, five heads, concat, W_o, output,
  // and the weights' branch.
  EXPECT_EQ(net.boxes().size(), 1u + 9u + 5u + 3u + 2u);
  // Three arrows per column, one per head, concat -> W_o -> output, the branch.
  ASSERT_EQ(net.arrows().size(), 9u + 5u + 2u + 2u);

  for (const NetworkBox& b : net.boxes()) {
    EXPECT_GE(b.x, 0) << b.name;
    EXPECT_GE(b.y, 0) << b.name;
    EXPECT_LE(b.x + b.width, net.width()) << b.name;
    EXPECT_LE(b.y + b.height, net.height()) << b.name;
  }
  // No two boxes overlap, except the heads lying on their frame.
  const NetworkBox& frame = net.box("heads");
  for (const NetworkBox& a : net.boxes())
    for (const NetworkBox& b : net.boxes()) {
      if (&a == &b || a.name == "heads" || b.name == "heads") continue;
      const bool apart = a.x + a.width <= b.x || b.x + b.width <= a.x || a.y + a.height <= b.y ||
                         b.y + b.height <= a.y;
      EXPECT_TRUE(apart) << a.name << " and " << b.name;
    }
  for (std::int64_t h = 1; h <= 5; ++h) {
    const NetworkBox& head = net.box("head " + std::to_string(h));
    EXPECT_GT(head.x, frame.x);
    EXPECT_LT(head.x + head.width, frame.x + frame.width);
    EXPECT_GT(head.y, frame.y);
    EXPECT_LT(head.y + head.height, frame.y + frame.height);
    EXPECT_EQ(head.lines.back(), "head " + std::to_string(h));
  }

  // Each arrow runs from its box's edge to the next box's edge, down the page
  // (or, for the weights, to the right), inside both boxes' extent.
  for (const NetworkArrow& a : net.arrows()) {
    SCOPED_TRACE(a.from + " -> " + a.to);
    const NetworkBox& from = net.box(a.from);
    const NetworkBox& to = net.box(a.to);
    if (a.x0 == a.x1) {
      EXPECT_EQ(a.y0, from.y + from.height);
      EXPECT_EQ(a.y1, to.y);
      EXPECT_GT(a.y1 - a.y0, 20);
      for (const NetworkBox* b : {&from, &to}) {
        EXPECT_GT(a.x0, b->x);
        EXPECT_LT(a.x0, b->x + b->width);
      }
    } else {
      EXPECT_EQ(a.y0, a.y1);
      EXPECT_EQ(a.x0, from.x + from.width);
      EXPECT_EQ(a.x1, to.x);
      for (const NetworkBox* b : {&from, &to}) {
        EXPECT_GT(a.y0, b->y);
        EXPECT_LT(a.y0, b->y + b->height);
      }
    }
  }
}

TEST(PlotNetwork, EveryEdgeCarriesItsStageShape) {
  const auto w = attn::multi_head_walkthrough(kDocument000);
  const Network net = attn::plot::network(w);
  const auto edge = [&net](const std::string& from, const std::string& to) -> const NetworkArrow& {
    for (const NetworkArrow& a : net.arrows())
      if (a.from == from && a.to == to) return a;
    ADD_FAILURE() << "no arrow " << from << " -> " << to;
    static const NetworkArrow none;
    return none;
  };
  const auto expect = [&](const std::string& from, const std::string& to, const char* letters,
                          const char* numbers) {
    const NetworkArrow& a = edge(from, to);
    EXPECT_EQ(a.letters, letters) << from << " -> " << to;
    EXPECT_EQ(a.numbers, numbers) << from << " -> " << to;
  };
  expect("query", "W_q", "(B, Lq, E)", "(2, 4, 100)");
  expect("key", "W_k", "(B, Lk, kdim)", "(2, 6, 100)");
  expect("value", "W_v", "(B, Lk, vdim)", "(2, 6, 100)");
  expect("W_q", "split_q", "(B, Lq, E)", "(2, 4, 100)");
  expect("W_k", "split_k", "(B, Lk, E)", "(2, 6, 100)");
  expect("split_q", "heads", "(B, H, Lq, E/H)", "(2, 5, 4, 20)");
  expect("split_v", "heads", "(B, H, Lk, E/H)", "(2, 5, 6, 20)");
  for (int h = 1; h <= 5; ++h)
    expect("head " + std::to_string(h), "concat", "(B, Lq, E/H)", "(2, 4, 20)");
  expect("concat", "W_o", "(B, Lq, E)", "(2, 4, 100)");
  expect("W_o", "output", "(B, Lq, E)", "(2, 4, 100)");
  expect("heads", "mean", "(B, H, Lq, Lk)", "(2, 5, 4, 6)");
  expect("mean", "weights", "(B, Lq, Lk)", "(2, 4, 6)");
  EXPECT_EQ(net.box("W_k").lines, (std::vector<std::string>{"W_k", "Linear(100 -> 100)"}));

  // Other widths and the sequence-first layout reach the edges too.
  const Network other = draw({.embed_dim = 12,
                              .num_heads = 3,
                              .batch = 1,
                              .queries = 5,
                              .keys = 2,
                              .kdim = 7,
                              .vdim = 9,
                              .batch_first = false});
  bool seen_key = false;
  for (const NetworkArrow& a : other.arrows())
    if (a.from == "key") {
      seen_key = true;
      EXPECT_EQ(a.letters, "(Lk, B, kdim)");
      EXPECT_EQ(a.numbers, "(2, 1, 7)");
    }
  EXPECT_TRUE(seen_key);
  EXPECT_EQ(other.box("W_v").lines.back(), "Linear(9 -> 12)");
  EXPECT_THAT(other.description(), HasSubstrs({"embed_dim 12", "3 heads of 4", "key (2, 1, 7)",
                                               "output (5, 1, 12)", "over heads (1, 5, 2)"}));
}

TEST(PlotNetwork, PngHasTheBoxesAndArrowsWhereTheNetworkSays) {
  const Network net = draw(kDocument000);
  const fs::path path = test_dir() / "network.png";
  net.save(path.string());
  const Image image = read_png(path);
  ASSERT_EQ(image.width, net.width());
  ASSERT_EQ(image.height, net.height());
  expect_boxes_inked(image, net, "png");
  expect_arrows_inked(image, net, "png");
  // The control: between the query and key columns, at the height of the first
  // arrows' labels, nothing is drawn; so the checks above can tell ink from paper.
  const NetworkBox& query = net.box("query");
  const NetworkBox& key = net.box("key");
  const NetworkBox& wq = net.box("W_q");
  const int gap_x = (query.x + query.width + key.x) / 2;
  for (int y = query.y + query.height; y < wq.y; ++y) EXPECT_TRUE(white(image, gap_x, y)) << y;
  EXPECT_TRUE(white(image, 1, 1));
  // Labels: glyphs right of the query's arrow, in the gap under its box.
  const NetworkArrow& first = net.arrows().front();
  int glyphs = 0;
  for (int y = static_cast<int>(first.y0); y < static_cast<int>(first.y1); ++y)
    for (int x = static_cast<int>(first.x0) + 4; x < query.x + query.width; ++x)
      glyphs += dark(image, x, y);
  EXPECT_GT(glyphs, 40);
}

TEST(PlotNetwork, SvgIsValidAndRendersToTheSameSize) {
  const Network net = draw(kDocument000);
  const fs::path dir = test_dir();
  const fs::path path = dir / "network.svg";
  net.save(path.string());
  EXPECT_EQ(run_tool("xmllint --noout " + quoted(path)), "");
  const std::string svg = read_file(path);
  EXPECT_THAT(svg, HasSubstr("width=\"" + std::to_string(net.width()) + "px\""));
  const std::size_t title_at = svg.find("<title>");
  ASSERT_NE(title_at, std::string::npos);
  const std::string title = svg.substr(title_at + 7, svg.find("</title>") - title_at - 7);
  // The description, XML-escaped ("->" becomes "-&gt;").
  std::string escaped;
  for (const char c : net.description())
    escaped += c == '>' ? std::string("&gt;") : std::string(1, c);
  EXPECT_EQ(title, escaped);
  EXPECT_THAT(title, HasSubstrs({"Multi-head attention network", "5 heads of 20",
                                 "split into heads (2, 5, 4, 20)", "output (2, 4, 100)"}));

  const fs::path png = dir / "network_from_svg.png";
  ASSERT_EQ(run_tool("rsvg-convert -o " + quoted(png) + " " + quoted(path)), "");
  const Image image = read_png(png);
  ASSERT_EQ(image.width, net.width());
  ASSERT_EQ(image.height, net.height());
  expect_boxes_inked(image, net, "svg");
  expect_arrows_inked(image, net, "svg");
}

TEST(PlotNetwork, PdfOpensAtTheSameSize) {
  const Network net = draw(kDocument000);
  const fs::path dir = test_dir();
  const fs::path path = dir / "network.pdf";
  net.save(path.string());
  EXPECT_THAT(read_file(path), HasSubstr("/Creator (attn)"));
  // pdftoppm -singlefile writes <prefix>.png; at 72 dpi a point is a pixel.
  ASSERT_EQ(run_tool("pdftoppm -png -r 72 -singlefile " + quoted(path) + " " +
                     quoted(dir / "network_from_pdf")),
            "");
  const Image image = read_png(dir / "network_from_pdf.png");
  ASSERT_EQ(image.width, net.width());
  ASSERT_EQ(image.height, net.height());
  expect_boxes_inked(image, net, "pdf");
  expect_arrows_inked(image, net, "pdf");
}

TEST(PlotNetwork, ManyHeadsAreDrawnAsFirstThreeEllipsisAndLast) {
  const Network six = draw({.embed_dim = 12, .num_heads = 6, .batch = 1, .queries = 2, .keys = 3});
  EXPECT_EQ(six.heads_drawn(), (std::vector<std::int64_t>{1, 2, 3, 6}));
  EXPECT_THAT(six.description(), HasSubstr("heads 4 to 5 not drawn"));
  const Network many =
      draw({.embed_dim = 512, .num_heads = 64, .batch = 8, .queries = 128, .keys = 96});
  EXPECT_EQ(many.heads_drawn(), (std::vector<std::int64_t>{1, 2, 3, 64}));
  EXPECT_THAT(many.description(), HasSubstrs({"64 heads of 8", "heads 4 to 63 not drawn"}));
  EXPECT_THAT(many.box("heads").lines.front(), HasSubstr("heads 4 to 63 are not drawn"));
  EXPECT_THAT(error_of([&] { many.box("head 4"); }), HasSubstr("no box named 'head 4'"));
  EXPECT_EQ(many.box("head 64").lines.back(), "head 64");
  // The ellipsis takes a slot between head 3 and head 64.
  EXPECT_GT(many.box("head 64").x - (many.box("head 3").x + many.box("head 3").width),
            many.box("head 2").x - (many.box("head 1").x + many.box("head 1").width));
  // Five heads still get a box each; the picture's width follows the heads drawn.
  EXPECT_EQ(draw(kDocument000).heads_drawn().size(), 5u);
  EXPECT_LT(many.width(), 2000);

  const fs::path path = test_dir() / "many.png";
  many.save(path.string());
  const Image image = read_png(path);
  ASSERT_EQ(image.width, many.width());
  expect_boxes_inked(image, many, "many heads");
  expect_arrows_inked(image, many, "many heads");

  // One head: no ellipsis, a single head box.
  const Network one = draw({.embed_dim = 4, .num_heads = 1});
  EXPECT_EQ(one.heads_drawn(), (std::vector<std::int64_t>{1}));
  EXPECT_THAT(one.description(), ::testing::Not(HasSubstr("not drawn")));
}

TEST(PlotNetwork, SaveErrorsNameThePath) {
  const Network net = draw(kDocument000);
  const fs::path dir = test_dir();
  EXPECT_THAT(
      error_of([&] { net.save((dir / "n.bmp").string()); }),
      HasSubstrs({"[Network::save]", "n.bmp", "unknown extension '.bmp'", ".png, .svg or .pdf"}));
  EXPECT_THAT(error_of([&] { net.save((dir / "missing" / "n.svg").string()); }),
              HasSubstrs({"[Network::save]", "cannot open for writing", "missing/n.svg"}));
  EXPECT_FALSE(fs::exists(dir / "n.bmp"));
}
