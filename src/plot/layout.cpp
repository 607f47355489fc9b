// compute_layout: measures every text with cairo's font metrics and places panels,
// ticks, labels and the colorbar, in whole pixels so that cells land on pixels.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "plot/figure_data.hpp"
#include "plot/text.hpp"

namespace attn::plot {
namespace {

constexpr double kTitleSize = 13, kLabelSize = 12, kTickSize = 10;
constexpr int kMargin = 10;
constexpr int kTickLength = 4;
constexpr int kTickGap = 3;      // between a tick and its label
constexpr int kPanelGap = 12;    // between panels of a row
constexpr int kRowGap = 10;      // between rows of panels (plus the title band)
constexpr int kBarGap = 16;      // between the last panel and the colorbar
constexpr int kBarWidth = 16;
constexpr int kBarTicks = 5;     // about this many ticks on the colorbar
constexpr double kMinTickSpacingX = 40, kMinTickSpacingY = 28;  // pixels between index ticks
constexpr std::int64_t kMaxPictureSide = 32767;

// The smallest of 1, 2, 5 x 10^k that is >= x.
double nice_step(double x) {
  const double p = std::pow(10.0, std::floor(std::log10(x)));
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (m * p >= x * (1 - 1e-9)) return m * p;
  return 10 * p;
}

struct Tick {
  double offset;  // pixels from the panel's edge to the centre of the position
  std::string label;
};

// Ticks along one panel axis of `len` positions drawn over `pixels`.
std::vector<Tick> axis_ticks(std::int64_t len, int pixels, const std::vector<std::string>& tokens,
                             double min_spacing) {
  const double per_position = static_cast<double>(pixels) / static_cast<double>(len);
  std::int64_t step = 1;
  if (!tokens.empty()) {
    step = static_cast<std::int64_t>(std::ceil(kTickSize * 1.3 / per_position));
  } else {
    step = static_cast<std::int64_t>(nice_step(std::max(1.0, min_spacing / per_position)));
  }
  step = std::max<std::int64_t>(step, 1);
  std::vector<Tick> ticks;
  for (std::int64_t i = 0; i < len; i += step)
    ticks.push_back({(static_cast<double>(i) + 0.5) * per_position,
                     tokens.empty() ? std::to_string(i) : tokens[static_cast<std::size_t>(i)]});
  return ticks;
}

// Colorbar values: multiples of a nice step inside [lo, hi], labelled with as many
// decimals as the step needs.
std::vector<std::pair<double, std::string>> value_ticks(double lo, double hi) {
  const double step = nice_step((hi - lo) / kBarTicks);
  const int decimals = std::max(0, -static_cast<int>(std::floor(std::log10(step) + 1e-9)));
  std::vector<std::pair<double, std::string>> ticks;
  for (double k = std::ceil(lo / step - 1e-9); k * step <= hi * (1 + 1e-9) + 1e-12; k += 1) {
    const double v = k * step;
    std::string label = fmt::format("{:.{}f}", v, decimals);
    if (label == fmt::format("-{:.{}f}", 0.0, decimals)) label.erase(0, 1);
    ticks.emplace_back(v, std::move(label));
  }
  return ticks;
}

int up(double x) { return static_cast<int>(std::ceil(x)); }

}  // namespace

void compute_layout(Figure::Data& d, int cell) {
  Measure m;
  Layout& L = d.layout;
  L.cell_pixels = cell;
  L.panel_width = static_cast<int>(d.shown_cols) * cell;
  L.panel_height = static_cast<int>(d.shown_rows) * cell;
  const cairo_font_extents_t tick_font = m.font(kTickSize);
  const cairo_font_extents_t label_font = m.font(kLabelSize);
  const cairo_font_extents_t title_font = m.font(kTitleSize);
  const double tick_line = tick_font.ascent + tick_font.descent;

  const std::vector<Tick> xticks = axis_ticks(d.lk, L.panel_width, d.x_tokens, kMinTickSpacingX);
  const std::vector<Tick> yticks = axis_ticks(d.lq, L.panel_height, d.y_tokens, kMinTickSpacingY);
  double ytick_label_width = 0, xtick_label_width = 0;
  for (const Tick& t : yticks) ytick_label_width = std::max(ytick_label_width, m.width(t.label, kTickSize));
  for (const Tick& t : xticks) xtick_label_width = std::max(xtick_label_width, m.width(t.label, kTickSize));
  // Token labels under the panels stand upright (rotated), index numbers lie flat.
  const bool x_vertical = !d.x_tokens.empty();
  const int ytick_band = up(ytick_label_width) + kTickLength + kTickGap + 1;
  const int xtick_band = up(x_vertical ? xtick_label_width : tick_line) + kTickLength + kTickGap + 1;
  const int ylabel_band = d.ylabel.empty() ? 0 : up(label_font.ascent + label_font.descent) + 4;
  const int xlabel_band = d.xlabel.empty() ? 0 : up(label_font.ascent + label_font.descent) + 4;
  const int title_band = d.titles.empty() ? 0 : up(title_font.ascent + title_font.descent) + 4;
  const int note_band = d.note.empty() ? 0 : up(tick_line) + 6;

  const auto bar_ticks = value_ticks(d.vmin, d.vmax);
  double bar_label_width = 0;
  for (const auto& [v, label] : bar_ticks) bar_label_width = std::max(bar_label_width, m.width(label, kTickSize));

  const int left = kMargin + ylabel_band + ytick_band;
  for (std::int64_t c = 0; c < d.grid_cols; ++c)
    L.panel_x.push_back(left + static_cast<int>(c) * (L.panel_width + kPanelGap));
  for (std::int64_t r = 0; r < d.grid_rows; ++r)
    L.panel_y.push_back(kMargin + title_band +
                        static_cast<int>(r) * (L.panel_height + kRowGap + title_band));
  const int grid_right = L.panel_x.back() + L.panel_width;
  const int grid_top = L.panel_y.front();
  const int grid_bottom = L.panel_y.back() + L.panel_height;

  L.bar_x = grid_right + kBarGap;
  L.bar_y = grid_top;
  L.bar_width = kBarWidth;
  L.bar_height = grid_bottom - grid_top;

  // Texts and ticks. A panel's frame is the 1-pixel line just outside its cells.
  auto add_text = [&](std::string text, double x, double y, double size, bool vertical = false) {
    if (!text.empty()) L.texts.push_back({std::move(text), x, y, size, vertical});
  };
  for (std::int64_t r = 0; r < d.grid_rows; ++r)
    for (std::int64_t c = 0; c < d.grid_cols; ++c)
      if (!d.titles.empty()) {
        const std::string& title = d.titles[static_cast<std::size_t>(r * d.grid_cols + c)];
        add_text(title, L.panel_x[c] + (L.panel_width - m.width(title, kTitleSize)) / 2,
                 L.panel_y[r] - 3 - title_font.descent, kTitleSize);
      }
  const double xtick_top = grid_bottom + 1;
  for (std::int64_t c = 0; c < d.grid_cols; ++c)
    for (const Tick& t : xticks) {
      const double x = std::floor(L.panel_x[c] + t.offset) + 0.5;
      L.ticks.push_back({x, xtick_top, x, xtick_top + kTickLength});
      const double label_top = xtick_top + kTickLength + kTickGap;
      if (x_vertical)
        add_text(t.label, x + (tick_font.ascent - tick_font.descent) / 2,
                 label_top + m.width(t.label, kTickSize), kTickSize, true);
      else
        add_text(t.label, x - m.width(t.label, kTickSize) / 2, label_top + tick_font.ascent, kTickSize);
    }
  for (std::int64_t r = 0; r < d.grid_rows; ++r)
    for (const Tick& t : yticks) {
      const double y = std::floor(L.panel_y[r] + t.offset) + 0.5;
      const double right = L.panel_x[0] - 1;
      L.ticks.push_back({right - kTickLength, y, right, y});
      add_text(t.label, right - kTickLength - kTickGap - m.width(t.label, kTickSize),
               y + (tick_font.ascent - tick_font.descent) / 2, kTickSize);
    }
  for (const auto& [v, label] : bar_ticks) {
    const double y = std::floor(L.bar_y + L.bar_height -
                                (v - d.vmin) / (d.vmax - d.vmin) * L.bar_height) + 0.5;
    const double right = L.bar_x + L.bar_width + 1;
    L.ticks.push_back({right, y, right + kTickLength, y});
    add_text(label, right + kTickLength + kTickGap, y + (tick_font.ascent - tick_font.descent) / 2,
             kTickSize);
  }
  add_text(d.xlabel, (left + grid_right - m.width(d.xlabel, kLabelSize)) / 2,
           grid_bottom + xtick_band + label_font.ascent + 2, kLabelSize);
  add_text(d.ylabel, kMargin + label_font.ascent + 2,
           (grid_top + grid_bottom + m.width(d.ylabel, kLabelSize)) / 2, kLabelSize, true);
  add_text(d.note, left, grid_bottom + xtick_band + xlabel_band + tick_font.ascent + 3, kTickSize);

  L.width = L.bar_x + L.bar_width + 1 + kTickLength + kTickGap + up(bar_label_width) + kMargin;
  L.height = grid_bottom + xtick_band + xlabel_band + note_band + kMargin;
  // Texts may reach past the grid (a long title, the note): grow to hold them.
  for (const Text& t : L.texts) {
    const double w = m.width(t.text, t.size);
    L.width = std::max(L.width, up((t.vertical ? t.x : t.x + w)) + kMargin);
  }
  if (L.width > kMaxPictureSide || L.height > kMaxPictureSide)
    throw Error(fmt::format("[heatmaps] the picture would be {} x {} pixels, more than {} per side; "
                            "show fewer panels, or lower cell_pixels or max_panel_pixels",
                            L.width, L.height, kMaxPictureSide));
}

}  // namespace attn::plot
