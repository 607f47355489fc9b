// Network: attn::plot::network, the accessors, and save through save_picture, the
// one writer of PNG, SVG and PDF.
#include <fmt/format.h>

#include "attn/error.hpp"
#include "plot/network_data.hpp"
#include "plot/save_picture.hpp"

namespace attn::plot {

Network network(const MultiHeadWalkthrough& walkthrough) {
  return Network(std::make_shared<const Network::Data>(layout_network(walkthrough)));
}

void Network::save(const std::string& path) const {
  const Data& d = *data_;
  save_picture(path, d.width, d.height, d.description, "Network::save",
               [&d](cairo_t* cr) { draw_network(cr, d); });
}

int Network::width() const { return data_->width; }
int Network::height() const { return data_->height; }
std::string Network::description() const { return data_->description; }
const std::vector<NetworkBox>& Network::boxes() const { return data_->boxes; }
const std::vector<NetworkArrow>& Network::arrows() const { return data_->arrows; }
const std::vector<std::int64_t>& Network::heads_drawn() const { return data_->heads_drawn; }

const NetworkBox& Network::box(std::string_view name) const {
  for (const NetworkBox& b : data_->boxes)
    if (b.name == name) return b;
  throw Error(fmt::format("[Network::box] no box named '{}'", name));
}

}  // namespace attn::plot
