#include "plot/text.hpp"

#include <numbers>

namespace attn::plot {
namespace {

void select_font(cairo_t* cr) {
  cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
}

}  // namespace

Measure::Measure()
    : surface_(cairo_image_surface_create(CAIRO_FORMAT_ARGB32, 1, 1), cairo_surface_destroy),
      cr_(cairo_create(surface_.get()), cairo_destroy) {
  select_font(cr_.get());
}

double Measure::width(const std::string& text, double size) {
  if (text.empty()) return 0;
  cairo_set_font_size(cr_.get(), size);
  cairo_text_extents_t e;
  cairo_text_extents(cr_.get(), text.c_str(), &e);
  return e.x_advance;
}

cairo_font_extents_t Measure::font(double size) {
  cairo_set_font_size(cr_.get(), size);
  cairo_font_extents_t e;
  cairo_font_extents(cr_.get(), &e);
  return e;
}

void draw_texts(cairo_t* cr, const std::vector<Text>& texts) {
  select_font(cr);
  for (const Text& t : texts) {
    cairo_save(cr);
    cairo_set_font_size(cr, t.size);
    cairo_move_to(cr, t.x, t.y);
    if (t.vertical) cairo_rotate(cr, -std::numbers::pi / 2);
    cairo_show_text(cr, t.text.c_str());
    cairo_restore(cr);
  }
}

}  // namespace attn::plot
