// Colormaps as anchor tables, interpolated linearly in sRGB (as matplotlib's
// LinearSegmentedColormap does).
#include <algorithm>
#include <array>
#include <cmath>
#include <span>

#include "plot/figure_data.hpp"

namespace attn::plot {
namespace {

struct Anchor {
  double t;
  Rgb color;
};

// matplotlib's viridis (256 entries), every 8th entry and the last, rounded to 8 bits.
constexpr auto kViridis = [] {
  constexpr Rgb c[] = {
      {0x44, 0x01, 0x54}, {0x47, 0x0d, 0x60}, {0x48, 0x18, 0x6a}, {0x48, 0x23, 0x74},
      {0x47, 0x2d, 0x7b}, {0x45, 0x37, 0x81}, {0x42, 0x40, 0x86}, {0x3e, 0x49, 0x89},
      {0x3b, 0x52, 0x8b}, {0x37, 0x5b, 0x8d}, {0x33, 0x63, 0x8d}, {0x2f, 0x6b, 0x8e},
      {0x2c, 0x72, 0x8e}, {0x29, 0x7a, 0x8e}, {0x26, 0x82, 0x8e}, {0x23, 0x89, 0x8e},
      {0x21, 0x91, 0x8c}, {0x1f, 0x98, 0x8b}, {0x1f, 0xa0, 0x88}, {0x22, 0xa7, 0x85},
      {0x28, 0xae, 0x80}, {0x32, 0xb6, 0x7a}, {0x3f, 0xbc, 0x73}, {0x4e, 0xc3, 0x6b},
      {0x5e, 0xc9, 0x62}, {0x70, 0xcf, 0x57}, {0x84, 0xd4, 0x4b}, {0x98, 0xd8, 0x3e},
      {0xad, 0xdc, 0x30}, {0xc2, 0xdf, 0x23}, {0xd8, 0xe2, 0x19}, {0xec, 0xe5, 0x1b},
      {0xfd, 0xe7, 0x25}};
  std::array<Anchor, std::size(c)> a{};
  for (std::size_t i = 0; i < a.size(); ++i)
    a[i] = {i + 1 == a.size() ? 1.0 : static_cast<double>(8 * i) / 255.0, c[i]};
  return a;
}();

// ColorBrewer's 9-class Reds, matplotlib's "Reds", evenly spaced.
constexpr auto kReds = [] {
  constexpr Rgb c[] = {{0xff, 0xf5, 0xf0}, {0xfe, 0xe0, 0xd2}, {0xfc, 0xbb, 0xa1},
                       {0xfc, 0x92, 0x72}, {0xfb, 0x6a, 0x4a}, {0xef, 0x3b, 0x2c},
                       {0xcb, 0x18, 0x1d}, {0xa5, 0x0f, 0x15}, {0x67, 0x00, 0x0d}};
  std::array<Anchor, std::size(c)> a{};
  for (std::size_t i = 0; i < a.size(); ++i)
    a[i] = {static_cast<double>(i) / static_cast<double>(a.size() - 1), c[i]};
  return a;
}();

Rgb interpolate(std::span<const Anchor> anchors, double t) {
  if (!(t > 0.0)) return anchors.front().color;  // NaN reads as the low end
  if (t >= 1.0) return anchors.back().color;
  const auto hi = std::upper_bound(anchors.begin(), anchors.end(), t,
                                   [](double x, const Anchor& a) { return x < a.t; });
  const Anchor& b = *hi;
  const Anchor& a = *(hi - 1);
  const double f = (t - a.t) / (b.t - a.t);
  auto mix = [f](std::uint8_t x, std::uint8_t y) {
    return static_cast<std::uint8_t>(std::lround(x + f * (static_cast<double>(y) - x)));
  };
  return {mix(a.color.r, b.color.r), mix(a.color.g, b.color.g), mix(a.color.b, b.color.b)};
}

}  // namespace

Rgb colormap_color(Colormap map, double t) {
  switch (map) {
    case Colormap::viridis: return interpolate(kViridis, t);
    case Colormap::reds: return interpolate(kReds, t);
  }
  return interpolate(kViridis, t);
}

const char* colormap_name(Colormap map) {
  switch (map) {
    case Colormap::viridis: return "viridis";
    case Colormap::reds: return "reds";
  }
  return "viridis";
}

}  // namespace attn::plot
