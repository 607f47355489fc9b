// attn::plot::network: the multi-head attention network of document 000, drawn with
// the tensor shape on every edge, from a shape walk-through (attn/explain.hpp):
//
//   query, key, value -> W_q, W_k, W_v -> split heads -> one scaled dot-product
//   attention per head -> concat -> W_o -> output, and the heads' weights ->
//   mean over heads -> attention weights
//
//   const auto w = attn::multi_head_walkthrough({.embed_dim = 100, .num_heads = 5,
//                                                .batch = 2, .queries = 4, .keys = 6});
//   attn::plot::network(w).save("mha.svg");
//
// Each edge carries its shape twice: in letters, "(B, Lq, E)", and in numbers,
// "(2, 4, 100)". More than kMaxHeadsDrawn heads are drawn as the first three, an
// ellipsis and the last; the picture and its description say so. Saved as PNG, SVG
// or PDF through the same writer as plot::heatmaps.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "attn/explain.hpp"

namespace attn::plot {

// Up to this many heads every head gets its box; beyond it the first three, an
// ellipsis and the last, so that the picture stays readable at any H.
inline constexpr int kMaxHeadsDrawn = 5;

// A box of the picture, in pixels from the top left (points for SVG and PDF).
struct NetworkBox {
  std::string name;  // "query", "W_q", "split_q", "head 1", "concat", "W_o", "output", ...
  std::vector<std::string> lines;  // the text inside it
  int x = 0, y = 0, width = 0, height = 0;
};

// An arrow, a straight line from (x0, y0) to (x1, y1), the head at (x1, y1).
struct NetworkArrow {
  std::string from, to;  // box names ("heads" is the frame around the heads)
  std::string letters;   // "(B, Lq, E)"
  std::string numbers;   // "(2, 4, 100)"
  double x0 = 0, y0 = 0, x1 = 0, y1 = 0;
};

class Network {
 public:
  // Writes the picture to `path`; .png, .svg or .pdf by the extension
  // (case-insensitive). Throws attn::Error for an unknown extension or a path that
  // cannot be written.
  void save(const std::string& path) const;

  int width() const;  // pixels for PNG, points for SVG and PDF
  int height() const;
  // One line saying what the picture shows, for alt text; saved as the SVG <title>
  // and the PDF title.
  std::string description() const;

  const std::vector<NetworkBox>& boxes() const;
  const NetworkBox& box(std::string_view name) const;  // throws attn::Error if none
  const std::vector<NetworkArrow>& arrows() const;
  // The heads that have a box, 1-based: all of them, or the first three and the last.
  const std::vector<std::int64_t>& heads_drawn() const;

  struct Data;  // the boxes, arrows and texts, placed once

 private:
  friend Network network(const MultiHeadWalkthrough& walkthrough);
  explicit Network(std::shared_ptr<const Data> data) : data_(std::move(data)) {}
  std::shared_ptr<const Data> data_;
};

Network network(const MultiHeadWalkthrough& walkthrough);

}  // namespace attn::plot
