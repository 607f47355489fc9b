// What a Network holds: every box, arrow and text placed once from the walk-through,
// so that the PNG, SVG and PDF surfaces are drawn by one function from the same numbers.
#pragma once

#include <cairo.h>

#include <string>
#include <vector>

#include "attn/plot.hpp"
#include "attn/plot_network.hpp"
#include "plot/text.hpp"

namespace attn::plot {

struct Network::Data {
  int width = 0, height = 0;
  std::vector<NetworkBox> boxes;  // the heads' frame first: the other boxes lie on it
  std::vector<Rgb> fills;         // one per box
  std::vector<NetworkArrow> arrows;
  std::vector<Text> texts;  // box lines, edge labels, title, ellipses
  std::vector<std::int64_t> heads_drawn;
  std::string description;
};

// Places everything for `walkthrough`.
Network::Data layout_network(const MultiHeadWalkthrough& walkthrough);

// Draws the whole network on `cr`, whatever its surface.
void draw_network(cairo_t* cr, const Network::Data& data);

}  // namespace attn::plot
