// The pictures `attn demo` draws: one heatmap (PNG) of the attention weights of every
// attention it computes, any other picture it adds (document 000's network), and an
// index.html that shows them all on one page, one section per document, each picture
// with a caption and its description as alt text.
//
//   DemoPictures pictures("attn-demo");      // creates the folder, or throws
//   pictures.document("001", "dot-product attention");
//   pictures.add("doc001_dot_product-weights", "softmax(x1 x2^T)", weights,
//                plot::Colormap::viridis);
//   pictures.add_picture("doc000-network", "the network", plot::network(walkthrough));
//   pictures.write_index();                  // attn-demo/index.html
#pragma once

#include <concepts>
#include <string>
#include <string_view>
#include <vector>

#include "attn/plot.hpp"
#include "attn/tensor.hpp"

namespace attn::tools {

// A picture of attn::plot: plot::Figure, plot::Network.
template <class P>
concept Picture = requires(const P& p, const std::string& path) {
  p.save(path);
  { p.description() } -> std::convertible_to<std::string>;
  { p.width() } -> std::convertible_to<int>;
  { p.height() } -> std::convertible_to<int>;
};

class DemoPictures {
 public:
  // Creates `dir` (and its parents) if missing; throws std::runtime_error if it cannot.
  explicit DemoPictures(std::string dir);

  // Starts the section of one document; the pictures added after it belong to it.
  void document(std::string_view id, std::string_view title);

  // Saves `weights` as <dir>/<name>.png, drawn as d2l's show_heatmaps draws them:
  // axes "Keys" and "Queries", one panel per batch (rows) and head (columns), titled
  // "batch b" or "batch b, head h".
  // weights: (B, Lq, Lk) or (B, H, Lq, Lk).
  void add(const std::string& name, std::string_view caption, const Tensor& weights,
           plot::Colormap colormap);

  // Saves `picture` as <dir>/<name>.png and shows it in the current section, its
  // description as alt text.
  template <Picture P>
  void add_picture(const std::string& name, std::string_view caption, const P& picture) {
    const std::string file = name + ".png";
    picture.save(path_of(file));
    add_saved(file, caption, picture.description(), picture.width(), picture.height());
  }

  // Writes <dir>/index.html and returns its path.
  std::string write_index() const;

 private:
  struct Picture {
    std::string file, caption, description;
    int width = 0, height = 0;
  };
  struct Section {
    std::string id, title;
    std::vector<Picture> pictures;
  };

  std::string path_of(const std::string& file) const;
  // Shows <dir>/<file>, already saved, in the current section.
  void add_saved(const std::string& file, std::string_view caption, std::string description,
                 int width, int height);

  std::string dir_;
  std::vector<Section> sections_;
};

// `text` with &, <, >, " and ' replaced by their HTML character references.
std::string html_escape(std::string_view text);

}  // namespace attn::tools
