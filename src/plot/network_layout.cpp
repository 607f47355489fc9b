// layout_network: places the boxes of the multi-head attention network top to
// bottom, measures every text with cairo's font metrics, and labels each arrow with
// its stage's shape (letters over numbers, right of a vertical arrow, above the
// horizontal one). Columns are as wide as their text and twice their labels, so that
// a label right of its arrow never reaches the next column.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <initializer_list>

#include "plot/network_data.hpp"

namespace attn::plot {
namespace {

constexpr double kTitleSize = 14, kBoxTextSize = 12, kLabelSize = 10.5;
constexpr int kMargin = 16;
constexpr int kPadX = 10, kPadY = 6;  // text inside a box
constexpr int kMinBoxWidth = 64;
constexpr int kColumnGap = 24;       // between the query, key and value columns
constexpr int kHeadGap = 14;         // between the heads' boxes
constexpr int kEllipsisWidth = 36;   // the slot of the heads not drawn
constexpr int kFramePad = 12;        // the heads' frame around its boxes
constexpr int kLabelGap = 6;         // between an arrow and its label
constexpr int kMinBranchArrow = 40;  // the horizontal arrow to "mean over heads"

// Fills: tensors blue, learned linear maps orange, views grey, attention green,
// the maps that combine heads violet.
constexpr Rgb kTensorFill{0xe3, 0xed, 0xfc}, kLinearFill{0xfd, 0xe6, 0xc8},
    kViewFill{0xe8, 0xe8, 0xe8}, kAttentionFill{0xdc, 0xf1, 0xd9}, kCombineFill{0xef, 0xe0, 0xf3},
    kFrameFill{0xf6, 0xf6, 0xf6};

int up(double x) { return static_cast<int>(std::ceil(x)); }

// Vertical arrows sit on pixel centres, so that a 1-pixel column is fully inked.
double pixel_centre(double x) { return std::floor(x) + 0.5; }

class Builder {
 public:
  explicit Builder(Network::Data& d)
      : d_(d),
        box_font_(m_.font(kBoxTextSize)),
        label_font_(m_.font(kLabelSize)),
        box_line_(box_font_.ascent + box_font_.descent),
        label_line_(label_font_.ascent + label_font_.descent) {}

  Measure& measure() { return m_; }
  double label_line() const { return label_line_; }
  const cairo_font_extents_t& label_font() const { return label_font_; }

  int text_width(const std::vector<std::string>& lines) {
    double w = 0;
    for (const std::string& line : lines) w = std::max(w, m_.width(line, kBoxTextSize));
    return std::max(kMinBoxWidth, up(w) + 2 * kPadX);
  }
  int box_height(std::size_t lines) const {
    return up(static_cast<double>(lines) * box_line_) + 2 * kPadY;
  }
  int label_width(const std::string& letters, const std::string& numbers) {
    return up(std::max(m_.width(letters, kLabelSize), m_.width(numbers, kLabelSize)));
  }

  // A box with its lines centred in it.
  void box(std::string name, std::vector<std::string> lines, int x, int y, int width, Rgb fill) {
    const int height = box_height(lines.size());
    const double top = y + (height - static_cast<double>(lines.size()) * box_line_) / 2;
    for (std::size_t i = 0; i < lines.size(); ++i)
      d_.texts.push_back({lines[i], x + (width - m_.width(lines[i], kBoxTextSize)) / 2,
                          top + static_cast<double>(i) * box_line_ + box_font_.ascent,
                          kBoxTextSize});
    d_.boxes.push_back({std::move(name), std::move(lines), x, y, width, height});
    d_.fills.push_back(fill);
  }

  // A vertical arrow at x from y0 down to y1, labelled on its right around label_mid.
  void down(const std::string& from, const std::string& to, double x, double y0, double y1,
            const std::string& letters, const std::string& numbers, double label_mid) {
    d_.arrows.push_back({from, to, letters, numbers, x, y0, x, y1});
    const double top = label_mid - label_line_;
    d_.texts.push_back({letters, x + kLabelGap, top + label_font_.ascent, kLabelSize});
    d_.texts.push_back(
        {numbers, x + kLabelGap, top + label_line_ + label_font_.ascent, kLabelSize});
  }
  void down(const std::string& from, const std::string& to, double x, double y0, double y1,
            const Stage& st) {
    down(from, to, x, y0, y1, st.letters, shape_str(st.shape), (y0 + y1) / 2);
  }

  const NetworkBox& last() const { return d_.boxes.back(); }

 private:
  Network::Data& d_;
  Measure m_;
  cairo_font_extents_t box_font_, label_font_;
  double box_line_, label_line_;
};

std::string describe(const MultiHeadWalkthrough& w, const std::vector<std::int64_t>& drawn) {
  const MultiHeadSizes& s = w.sizes;
  const auto shape = [&w](Step step) { return shape_str(w.at(step).shape); };
  std::string text = fmt::format(
      "Multi-head attention network: embed_dim {}, {} heads of {}, batch {}, {} queries, {} "
      "key-value pairs; query {}, key {}, value {} -> W_q, W_k, W_v {}, {}, {} -> split into "
      "heads {}, {}, {} -> scaled dot-product attention per head, weights {} -> concat {} -> "
      "W_o -> output {}; weights averaged over heads {}",
      s.embed_dim, s.num_heads, w.head_dim, s.batch, s.queries, s.keys, shape(Step::query),
      shape(Step::key), shape(Step::value), shape(Step::project_q), shape(Step::project_k),
      shape(Step::project_v), shape(Step::split_q), shape(Step::split_k), shape(Step::split_v),
      shape(Step::softmax), shape(Step::concat), shape(Step::project_out),
      shape(Step::average_weights));
  if (static_cast<std::int64_t>(drawn.size()) < s.num_heads)
    text += fmt::format("; heads {} to {} not drawn", drawn[2] + 1, drawn.back() - 1);
  return text;
}

}  // namespace

Network::Data layout_network(const MultiHeadWalkthrough& w) {
  Network::Data d;
  Builder b(d);
  Measure& m = b.measure();
  const MultiHeadSizes& s = w.sizes;
  const std::int64_t E = s.embed_dim, H = s.num_heads;
  const int gap = up(2 * b.label_line()) + 2 * kLabelGap;  // between rows: holds a label

  // ---- the heads that get a box ------------------------------------------------
  if (H <= kMaxHeadsDrawn) {
    for (std::int64_t h = 1; h <= H; ++h) d.heads_drawn.push_back(h);
  } else {
    d.heads_drawn = {1, 2, 3, H};
  }
  const bool elided = static_cast<std::int64_t>(d.heads_drawn.size()) < H;

  // ---- widths --------------------------------------------------------------------
  const Step inputs[] = {Step::query, Step::key, Step::value};
  const Step projections[] = {Step::project_q, Step::project_k, Step::project_v};
  const Step splits[] = {Step::split_q, Step::split_k, Step::split_v};
  const std::int64_t in_widths[] = {E, *s.kdim, *s.vdim};
  const auto linear_lines = [&](int i) {
    return std::vector<std::string>{w.at(projections[i]).weight_name,
                                    fmt::format("Linear({} -> {})", in_widths[i], E)};
  };
  const std::vector<std::string> split_lines = {
      fmt::format("split into {} head{}", H, H == 1 ? "" : "s"), "a view, no copy"};
  int column = kMinBoxWidth;
  for (int i = 0; i < 3; ++i) {
    column = std::max({column, b.text_width({w.at(inputs[i]).name}), b.text_width(linear_lines(i)),
                       b.text_width(split_lines)});
    for (const Step step : {inputs[i], projections[i], splits[i]}) {
      const Stage& st = w.at(step);
      column = std::max(column, 2 * (b.label_width(st.letters, shape_str(st.shape)) + kLabelGap));
    }
  }
  const int streams_span = 3 * column + 2 * kColumnGap;

  // One head's output: its (B, Lq, E/H) slice of the (B, H, Lq, E/H) weighted sum.
  const Shape& ws = w.at(Step::weighted_sum).shape;
  const std::string head_letters = "(B, Lq, E/H)", head_numbers = shape_str({ws[0], ws[2], ws[3]});
  const auto head_lines = [](std::int64_t h) {
    return std::vector<std::string>{"scaled dot-product", "attention", fmt::format("head {}", h)};
  };
  const int head_width = std::max(b.text_width(head_lines(H)),
                                  2 * (b.label_width(head_letters, head_numbers) + kLabelGap));
  const int slots = static_cast<int>(d.heads_drawn.size()) + (elided ? 1 : 0);
  const int heads_span = static_cast<int>(d.heads_drawn.size()) * head_width +
                         (elided ? kEllipsisWidth : 0) + (slots - 1) * kHeadGap;

  std::string frame_label =
      H == 1 ? fmt::format("1 head: softmax(Q K^T / sqrt({})) V", w.head_dim)
             : fmt::format("{} heads in parallel, each softmax(Q K^T / sqrt({})) V", H, w.head_dim);
  if (elided) frame_label += fmt::format("; heads 4 to {} are not drawn", H - 1);

  const std::vector<std::string> concat_lines = {"concat heads", "(d2l's transpose_output)"};
  const std::vector<std::string> out_lines = {"W_o", fmt::format("Linear({} -> {})", E, E)};
  const int concat_width = std::max(heads_span, b.text_width(concat_lines));
  const int content =
      std::max({streams_span, heads_span, concat_width, up(m.width(frame_label, kLabelSize))});
  const int frame_x = kMargin, frame_width = content + 2 * kFramePad;
  const double cx = frame_x + frame_width / 2.0;  // the centre line of the main column

  // ---- title -------------------------------------------------------------------------
  const cairo_font_extents_t title_font = m.font(kTitleSize);
  const std::string title = fmt::format(
      "Multi-head attention: E = {}, H = {}, E/H = {}, B = {}, Lq = {}, Lk = {}, kdim = {}, "
      "vdim = {}",
      E, H, w.head_dim, s.batch, s.queries, s.keys, *s.kdim, *s.vdim);
  const std::string subtitle =
      fmt::format("every edge: the shape in letters, then in numbers; {}",
                  s.batch_first ? "batch_first=True" : "batch_first=False: (L, B, E)");
  int y = kMargin;
  d.texts.push_back({title, static_cast<double>(kMargin), y + title_font.ascent, kTitleSize});
  y += up(title_font.ascent + title_font.descent) + 2;
  d.texts.push_back(
      {subtitle, static_cast<double>(kMargin), y + b.label_font().ascent, kLabelSize});
  y += up(b.label_line()) + 12;
  int right = std::max(kMargin + up(m.width(title, kTitleSize)),
                       kMargin + up(m.width(subtitle, kLabelSize)));

  // ---- the heads' frame goes first: every other box is drawn over it ----------------
  const int row_in = y;
  const int row_linear = row_in + b.box_height(1) + gap;
  const int row_split = row_linear + b.box_height(2) + gap;
  const int frame_y = row_split + b.box_height(2) + gap;
  const int band = up(b.label_line()) + 10;
  const int row_heads = frame_y + band;
  const int frame_height = band + b.box_height(3) + kFramePad;
  d.boxes.push_back({"heads", {frame_label}, frame_x, frame_y, frame_width, frame_height});
  d.fills.push_back(kFrameFill);
  d.texts.push_back({frame_label, static_cast<double>(frame_x + kFramePad),
                     frame_y + 5 + b.label_font().ascent, kLabelSize});

  // ---- query, key, value -> W_q, W_k, W_v -> split heads -------------------------------
  const char* suffix[] = {"q", "k", "v"};
  for (int i = 0; i < 3; ++i) {
    const int x =
        static_cast<int>(std::lround(cx - streams_span / 2.0)) + i * (column + kColumnGap);
    const double ax = pixel_centre(x + column / 2.0);
    const std::string input = w.at(inputs[i]).name;
    const std::string linear = w.at(projections[i]).weight_name;
    const std::string split = std::string("split_") + suffix[i];
    b.box(input, {input}, x, row_in, column, kTensorFill);
    const int in_bottom = b.last().y + b.last().height;
    b.box(linear, linear_lines(i), x, row_linear, column, kLinearFill);
    const int linear_bottom = b.last().y + b.last().height;
    b.box(split, split_lines, x, row_split, column, kViewFill);
    const int split_bottom = b.last().y + b.last().height;
    b.down(input, linear, ax, in_bottom, row_linear, w.at(inputs[i]));
    b.down(linear, split, ax, linear_bottom, row_split, w.at(projections[i]));
    b.down(split, "heads", ax, split_bottom, frame_y, w.at(splits[i]));
  }

  // ---- the heads -> concat ------------------------------------------------------------------
  const int frame_bottom = frame_y + frame_height;
  const int row_concat = frame_bottom + gap;
  const int concat_x = static_cast<int>(std::lround(cx - concat_width / 2.0));
  int x = static_cast<int>(std::lround(cx - heads_span / 2.0));
  for (std::size_t i = 0; i < d.heads_drawn.size(); ++i) {
    if (elided && i + 1 == d.heads_drawn.size()) {
      // The heads not drawn: an ellipsis in their slot, in the row and under it.
      const double ex = x + kEllipsisWidth / 2.0 - m.width("...", kBoxTextSize) / 2;
      d.texts.push_back({"...", ex, row_heads + b.box_height(3) / 2.0, kBoxTextSize});
      d.texts.push_back({"...", ex, (frame_bottom + row_concat) / 2.0, kBoxTextSize});
      x += kEllipsisWidth + kHeadGap;
    }
    const std::string name = fmt::format("head {}", d.heads_drawn[i]);
    b.box(name, head_lines(d.heads_drawn[i]), x, row_heads, head_width, kAttentionFill);
    const double ax = pixel_centre(x + head_width / 2.0);
    b.down(name, "concat", ax, row_heads + b.last().height, row_concat, head_letters, head_numbers,
           (frame_bottom + row_concat) / 2.0);
    x += head_width + kHeadGap;
  }

  // ---- concat -> W_o -> output -----------------------------------------------------------
  const double ax = pixel_centre(cx);
  b.box("concat", concat_lines, concat_x, row_concat, concat_width, kCombineFill);
  const int concat_bottom = b.last().y + b.last().height;
  const int row_out_proj = concat_bottom + gap;
  const int out_width = std::max(column, b.text_width(out_lines));
  b.box("W_o", out_lines, static_cast<int>(std::lround(cx - out_width / 2.0)), row_out_proj,
        out_width, kLinearFill);
  const int out_proj_bottom = b.last().y + b.last().height;
  const int row_output = out_proj_bottom + gap;
  b.box("output", {"output"}, static_cast<int>(std::lround(cx - column / 2.0)), row_output, column,
        kTensorFill);
  b.down("concat", "W_o", ax, concat_bottom, row_out_proj, w.at(Step::concat));
  b.down("W_o", "output", ax, out_proj_bottom, row_output, w.at(Step::project_out));
  int bottom = b.last().y + b.last().height;

  // ---- the heads' weights -> mean over heads -> attention weights -------------------------
  const Stage& weights = w.at(Step::softmax);
  const Stage& mean = w.at(Step::average_weights);
  const int branch = std::max(
      kMinBranchArrow, b.label_width(weights.letters, shape_str(weights.shape)) + 2 * kLabelGap);
  const int mean_x = frame_x + frame_width + branch;
  const int mean_width =
      std::max({b.text_width({"mean over heads"}), b.text_width({"attention weights"}),
                2 * (b.label_width(mean.letters, shape_str(mean.shape)) + kLabelGap)});
  const double branch_y = pixel_centre(row_heads + b.box_height(3) / 2.0);
  const int mean_y = static_cast<int>(std::lround(branch_y - b.box_height(1) / 2.0));
  b.box("mean", {"mean over heads"}, mean_x, mean_y, mean_width, kCombineFill);
  const int mean_bottom = b.last().y + b.last().height;
  const int row_weights = mean_bottom + gap;
  b.box("weights", {"attention weights"}, mean_x, row_weights, mean_width, kTensorFill);
  // The horizontal arrow, labelled above its line.
  d.arrows.push_back({"heads", "mean", weights.letters, shape_str(weights.shape),
                      static_cast<double>(frame_x + frame_width), branch_y,
                      static_cast<double>(mean_x), branch_y});
  const double label_x = frame_x + frame_width + kLabelGap;
  const double numbers_base = branch_y - kLabelGap - b.label_font().descent;
  d.texts.push_back({weights.letters, label_x, numbers_base - b.label_line(), kLabelSize});
  d.texts.push_back({shape_str(weights.shape), label_x, numbers_base, kLabelSize});
  b.down("mean", "weights", pixel_centre(mean_x + mean_width / 2.0), mean_bottom, row_weights,
         mean);

  right = std::max(right, mean_x + mean_width);
  bottom = std::max(bottom, b.last().y + b.last().height);
  d.width = right + kMargin;
  d.height = bottom + kMargin;
  d.description = describe(w, d.heads_drawn);
  return d;
}

}  // namespace attn::plot
