// Text of every picture: one font ("sans-serif"), measured with cairo's metrics when
// the layout is made, and drawn by one function, so that PNG, SVG and PDF agree.
#pragma once

#include <cairo.h>

#include <memory>
#include <string>
#include <vector>

namespace attn::plot {

struct Text {
  std::string text;
  double x = 0, y = 0;    // start of the baseline
  double size = 10;       // font size in pixels
  bool vertical = false;  // rotated a quarter turn counter-clockwise (reads upwards)
};

// Measures text in the font all pictures use, on a 1 x 1 scratch surface.
class Measure {
 public:
  Measure();
  double width(const std::string& text, double size);  // the advance, in pixels
  cairo_font_extents_t font(double size);

 private:
  std::unique_ptr<cairo_surface_t, decltype(&cairo_surface_destroy)> surface_;
  std::unique_ptr<cairo_t, decltype(&cairo_destroy)> cr_;
};

// Draws `texts` in the current source colour.
void draw_texts(cairo_t* cr, const std::vector<Text>& texts);

}  // namespace attn::plot
