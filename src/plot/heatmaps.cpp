// heatmaps: validation at the boundary, and the one pass over the weights that
// reduces each panel to at most max_panel_pixels cells per side (block means).
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "plot/figure_data.hpp"

namespace attn::plot {
namespace {

constexpr std::string_view kOp = "heatmaps";
// Auto cell size: a panel about this wide, with cells of 1 to kMaxAutoCell pixels.
constexpr int kTargetPanelPixels = 256;
constexpr int kMaxAutoCell = 32;
// cairo's image surfaces hold at most this many pixels per side.
constexpr std::int64_t kMaxPictureSide = 32767;

[[noreturn]] void fail(const std::string& message) {
  throw Error(fmt::format("[{}] {}", kOp, message));
}

// Output bin i of n over [0, len): [i * len / n, (i + 1) * len / n).
std::int64_t bin_start(std::int64_t i, std::int64_t len, std::int64_t n) { return i * len / n; }

// Reduces the (lq, lk) matrix at `base` (strides sq, sk) to (nq, nk) block means in
// `out`; throws on the first non-finite value, naming its index.
void block_means(const float* base, std::int64_t sq, std::int64_t sk, std::int64_t lq,
                 std::int64_t lk, std::int64_t nq, std::int64_t nk, float* out,
                 const Tensor& weights, const Shape& panel_index) {
  std::vector<double> sums(static_cast<std::size_t>(nk));  // (nk,): one output row
  for (std::int64_t i = 0; i < nq; ++i) {
    const std::int64_t q0 = bin_start(i, lq, nq), q1 = bin_start(i + 1, lq, nq);
    std::fill(sums.begin(), sums.end(), 0.0);
    for (std::int64_t q = q0; q < q1; ++q) {
      const float* row = base + q * sq;
      for (std::int64_t j = 0; j < nk; ++j) {
        const std::int64_t k0 = bin_start(j, lk, nk), k1 = bin_start(j + 1, lk, nk);
        double s = 0.0;
        for (std::int64_t k = k0; k < k1; ++k) {
          const float v = row[k * sk];
          if (!std::isfinite(v)) {
            Shape index = panel_index;
            index.push_back(q);
            index.push_back(k);
            fail(fmt::format("weights: non-finite value {} at {} of weights {}", v,
                             shape_str(index), weights.shape_string()));
          }
          s += v;
        }
        sums[static_cast<std::size_t>(j)] += s;
      }
    }
    for (std::int64_t j = 0; j < nk; ++j) {
      const std::int64_t k0 = bin_start(j, lk, nk), k1 = bin_start(j + 1, lk, nk);
      out[i * nk + j] =
          static_cast<float>(sums[static_cast<std::size_t>(j)] / static_cast<double>((q1 - q0) * (k1 - k0)));
    }
  }
}

void check_tokens(const std::vector<std::string>& tokens, const char* name, std::int64_t len,
                  const char* what, const Tensor& weights) {
  if (!tokens.empty() && static_cast<std::int64_t>(tokens.size()) != len)
    fail(fmt::format("{}: {} labels for {} {}; weights {}", name, tokens.size(), len, what,
                     weights.shape_string()));
}

}  // namespace

Figure heatmaps(const Tensor& weights, const HeatmapOptions& options) {
  const std::int64_t rank = weights.rank();
  if (rank < 2 || rank > 4)
    fail(fmt::format("weights: expected (Lq, Lk), (rows, Lq, Lk) or (rows, cols, Lq, Lk), "
                     "got rank {}: weights {}",
                     rank, weights.shape_string()));
  if (weights.numel() == 0)
    fail(fmt::format("weights: nothing to show in an empty tensor: weights {}",
                     weights.shape_string()));
  if (options.cell_pixels < 0)
    fail(fmt::format("cell_pixels: must be >= 0 (0 chooses), got {}", options.cell_pixels));
  if (options.max_panel_pixels < 1)
    fail(fmt::format("max_panel_pixels: must be >= 1, got {}", options.max_panel_pixels));
  for (const auto& [name, value] : {std::pair{"vmin", options.vmin}, std::pair{"vmax", options.vmax}})
    if (value && !std::isfinite(*value)) fail(fmt::format("{}: must be finite, got {}", name, *value));
  if (options.vmin && options.vmax && !(*options.vmin < *options.vmax))
    fail(fmt::format("vmin {} must be less than vmax {}", *options.vmin, *options.vmax));

  // View every input as (rows, cols, Lq, Lk): (rows, Lq, Lk) is a column of panels.
  Tensor w4 = rank == 2 ? weights.unsqueeze(0).unsqueeze(0)
              : rank == 3 ? weights.unsqueeze(1)
                          : weights;
  auto data = std::make_shared<Figure::Data>();
  Figure::Data& d = *data;
  d.grid_rows = w4.size(0);
  d.grid_cols = w4.size(1);
  d.lq = w4.size(2);
  d.lk = w4.size(3);
  const std::int64_t panels = d.grid_rows * d.grid_cols;

  if (!options.titles.empty() && static_cast<std::int64_t>(options.titles.size()) != panels)
    fail(fmt::format("titles: {} titles for {} panels ({} x {}); weights {}", options.titles.size(),
                     panels, d.grid_rows, d.grid_cols, weights.shape_string()));
  check_tokens(options.x_tokens, "x_tokens", d.lk, "keys (Lk)", weights);
  check_tokens(options.y_tokens, "y_tokens", d.lq, "queries (Lq)", weights);

  const std::int64_t max_side = options.max_panel_pixels;
  d.shown_rows = std::min(d.lq, max_side);
  d.shown_cols = std::min(d.lk, max_side);
  const int cell = options.cell_pixels > 0
                       ? options.cell_pixels
                       : static_cast<int>(std::clamp<std::int64_t>(
                             kTargetPanelPixels / std::max(d.shown_rows, d.shown_cols), 1,
                             kMaxAutoCell));
  // A rough bound before anything is allocated; compute_layout checks the exact size.
  if (d.grid_cols * d.shown_cols * cell > kMaxPictureSide ||
      d.grid_rows * d.shown_rows * cell > kMaxPictureSide)
    fail(fmt::format("the picture of {} x {} panels of {} x {} cells of {} pixels would exceed "
                     "{} pixels per side; show fewer panels, or lower cell_pixels or "
                     "max_panel_pixels; weights {}",
                     d.grid_rows, d.grid_cols, d.shown_rows, d.shown_cols, cell, kMaxPictureSide,
                     weights.shape_string()));

  const std::size_t panel_cells = static_cast<std::size_t>(d.shown_rows * d.shown_cols);
  d.values.resize(static_cast<std::size_t>(panels) * panel_cells);
  for (std::int64_t r = 0; r < d.grid_rows; ++r) {
    for (std::int64_t c = 0; c < d.grid_cols; ++c) {
      const float* base = w4.data() + r * w4.stride(0) + c * w4.stride(1);
      Shape panel_index;  // the panel's index in the caller's shape
      if (rank >= 3) panel_index.push_back(r);
      if (rank == 4) panel_index.push_back(c);
      block_means(base, w4.stride(2), w4.stride(3), d.lq, d.lk, d.shown_rows, d.shown_cols,
                  d.values.data() + static_cast<std::size_t>(r * d.grid_cols + c) * panel_cells,
                  weights, panel_index);
    }
  }

  const auto [lo, hi] = std::minmax_element(d.values.begin(), d.values.end());
  d.vmin = options.vmin.value_or(std::min(0.0f, *lo));
  d.vmax = options.vmax.value_or(*hi);
  if (!(d.vmin < d.vmax)) {
    // One value everywhere (e.g. all zero), or a given bound on the wrong side of
    // the data: keep the given bound and open the range by one.
    if (options.vmax) d.vmin = d.vmax - 1.0f;
    else d.vmax = d.vmin + 1.0f;
  }
  d.colormap = options.colormap;
  d.xlabel = options.xlabel;
  d.ylabel = options.ylabel;
  d.titles = options.titles;
  d.x_tokens = options.x_tokens;
  d.y_tokens = options.y_tokens;
  if (d.averaged())
    d.note = fmt::format("{} x {} shown as {} x {} block means", d.lq, d.lk, d.shown_rows,
                         d.shown_cols);
  compute_layout(d, cell);
  return Figure(std::move(data));
}

}  // namespace attn::plot
