#include "demo_pictures.hpp"

#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <system_error>

#include <fmt/format.h>

namespace attn::tools {
namespace {

namespace fs = std::filesystem;

// d2l's show_heatmaps titles its panels per head; a picture here holds a whole
// (B, Lq, Lk) or (B, H, Lq, Lk) tensor, so each panel names its batch and head.
std::vector<std::string> panel_titles(const Tensor& weights) {
  std::vector<std::string> titles;
  const std::int64_t batch = weights.size(0);
  const std::int64_t heads = weights.rank() == 4 ? weights.size(1) : 0;
  for (std::int64_t b = 0; b < batch; ++b) {
    if (heads == 0) titles.push_back(fmt::format("batch {}", b));
    for (std::int64_t h = 0; h < heads; ++h) titles.push_back(fmt::format("batch {}, head {}", b, h));
  }
  return titles;
}

constexpr std::string_view kStyle =
    "body { font-family: sans-serif; margin: 2em; }\n"
    "figure { display: inline-block; vertical-align: top; margin: 0 2em 2em 0; }\n"
    "figcaption { max-width: 40em; font-size: 90%; }\n"
    "img { max-width: 100%; height: auto; }\n";

}  // namespace

std::string html_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

DemoPictures::DemoPictures(std::string dir) : dir_(std::move(dir)) {
  std::error_code error;
  fs::create_directories(dir_, error);
  if (error || !fs::is_directory(dir_))
    throw std::runtime_error(fmt::format("demo: cannot create the output folder '{}': {}", dir_,
                                         error ? error.message() : "not a directory"));
}

void DemoPictures::document(std::string_view id, std::string_view title) {
  sections_.push_back({std::string(id), std::string(title), {}});
}

void DemoPictures::add(const std::string& name, std::string_view caption, const Tensor& weights,
                       plot::Colormap colormap) {
  add_picture(name, caption, plot::heatmaps(weights, {.xlabel = "Keys",
                                                      .ylabel = "Queries",
                                                      .titles = panel_titles(weights),
                                                      .colormap = colormap}));
}

std::string DemoPictures::path_of(const std::string& file) const {
  // Before anything is saved: a picture outside every section would be on no page.
  if (sections_.empty()) throw std::logic_error("DemoPictures: a picture before document()");
  return (fs::path(dir_) / file).string();
}

void DemoPictures::add_saved(const std::string& file, std::string_view caption,
                             std::string description, int width, int height) {
  sections_.back().pictures.push_back(
      {file, std::string(caption), std::move(description), width, height});
}

std::string DemoPictures::write_index() const {
  const std::string path = (fs::path(dir_) / "index.html").string();
  std::string html = fmt::format(
      "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
      "<title>attn demo: attention weights</title>\n<style>\n{}</style>\n</head>\n<body>\n"
      "<h1>attn demo: attention weights</h1>\n"
      "<p>The attention weights of every attention the demo computes, one picture per "
      "attention; colours from the lowest to the highest weight shown. Document 000 "
      "also shows its multi-head attention network with the tensor shape on every "
      "edge.</p>\n",
      kStyle);
  for (const Section& s : sections_) {
    if (s.pictures.empty()) continue;
    html += fmt::format("<section id=\"document-{0}\">\n<h2>Document {0}: {1}</h2>\n",
                        html_escape(s.id), html_escape(s.title));
    for (const Picture& p : s.pictures)
      html += fmt::format(
          "<figure>\n<img src=\"{}\" width=\"{}\" height=\"{}\" alt=\"{}\">\n"
          "<figcaption>{}</figcaption>\n</figure>\n",
          html_escape(p.file), p.width, p.height, html_escape(p.description),
          html_escape(p.caption));
    html += "</section>\n";
  }
  html += "</body>\n</html>\n";

  std::ofstream out(path, std::ios::binary);
  out << html;
  out.close();
  if (!out) throw std::runtime_error(fmt::format("demo: cannot write '{}'", path));
  return path;
}

}  // namespace attn::tools
