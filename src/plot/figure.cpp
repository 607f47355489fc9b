// Figure: accessors, and save, which picks the cairo surface by the file extension
// and hands it to the one drawing function.
#include <cairo-pdf.h>
#include <cairo-svg.h>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <memory>

#include "plot/figure_data.hpp"

namespace attn::plot {
namespace {

using SurfacePtr = std::unique_ptr<cairo_surface_t, decltype(&cairo_surface_destroy)>;
using ContextPtr = std::unique_ptr<cairo_t, decltype(&cairo_destroy)>;

enum class Format { png, svg, pdf };

[[noreturn]] void fail(const std::string& message) {
  throw Error("[Figure::save] " + message);
}

Format format_of(const std::string& path) {
  const std::size_t dot = path.find_last_of('.');
  const std::size_t slash = path.find_last_of('/');
  std::string ext = dot == std::string::npos || (slash != std::string::npos && dot < slash)
                        ? std::string()
                        : path.substr(dot);
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
  if (ext == ".png") return Format::png;
  if (ext == ".svg") return Format::svg;
  if (ext == ".pdf") return Format::pdf;
  fail(fmt::format("path '{}': unknown extension '{}'; expected .png, .svg or .pdf", path, ext));
}

cairo_status_t append_to_string(void* closure, const unsigned char* data, unsigned int length) {
  static_cast<std::string*>(closure)->append(reinterpret_cast<const char*>(data), length);
  return CAIRO_STATUS_SUCCESS;
}

std::string xml_escape(const std::string& text) {
  std::string out;
  for (char ch : text) {
    switch (ch) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += ch;
    }
  }
  return out;
}

void check(cairo_status_t status, const std::string& path) {
  if (status != CAIRO_STATUS_SUCCESS)
    fail(fmt::format("path '{}': cairo could not draw the figure: {}", path,
                     cairo_status_to_string(status)));
}

// Draws into `surface` and finishes it; the surface writes its stream.
void render(cairo_surface_t* surface, const Figure::Data& data, const std::string& path) {
  check(cairo_surface_status(surface), path);
  ContextPtr cr(cairo_create(surface), cairo_destroy);
  draw_figure(cr.get(), data);
  check(cairo_status(cr.get()), path);
  cairo_surface_flush(surface);
}

}  // namespace

void Figure::save(const std::string& path) const {
  const Format format = format_of(path);
  const Figure::Data& d = *data_;
  const Layout& L = d.layout;
  // The whole file is made in memory first, so that a failed draw leaves no half file.
  std::string bytes;
  if (format == Format::png) {
    SurfacePtr surface(cairo_image_surface_create(CAIRO_FORMAT_RGB24, L.width, L.height),
                       cairo_surface_destroy);
    render(surface.get(), d, path);
    check(cairo_surface_write_to_png_stream(surface.get(), append_to_string, &bytes), path);
  } else if (format == Format::svg) {
    SurfacePtr surface(cairo_svg_surface_create_for_stream(append_to_string, &bytes, L.width, L.height),
                       cairo_surface_destroy);
    cairo_svg_surface_set_document_unit(surface.get(), CAIRO_SVG_UNIT_PX);
    render(surface.get(), d, path);
    cairo_surface_finish(surface.get());
    check(cairo_surface_status(surface.get()), path);
    // cairo writes text as glyph outlines; the description goes in as the document's
    // <title>, for screen readers and search.
    const std::size_t svg = bytes.find("<svg");
    const std::size_t end = svg == std::string::npos ? svg : bytes.find('>', svg);
    if (end != std::string::npos)
      bytes.insert(end + 1, "\n<title>" + xml_escape(description()) + "</title>");
  } else {
    SurfacePtr surface(cairo_pdf_surface_create_for_stream(append_to_string, &bytes, L.width, L.height),
                       cairo_surface_destroy);
    cairo_pdf_surface_set_metadata(surface.get(), CAIRO_PDF_METADATA_TITLE, description().c_str());
    cairo_pdf_surface_set_metadata(surface.get(), CAIRO_PDF_METADATA_CREATOR, "attn");
    render(surface.get(), d, path);
    cairo_surface_finish(surface.get());
    check(cairo_surface_status(surface.get()), path);
  }

  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) fail(fmt::format("path '{}': cannot open for writing: {}", path, std::strerror(errno)));
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  out.close();
  if (!out) fail(fmt::format("path '{}': writing {} bytes failed: {}", path, bytes.size(), std::strerror(errno)));
}

int Figure::width() const { return data_->layout.width; }
int Figure::height() const { return data_->layout.height; }
int Figure::rows() const { return static_cast<int>(data_->grid_rows); }
int Figure::cols() const { return static_cast<int>(data_->grid_cols); }

PanelGeometry Figure::panel(int row, int col) const {
  const Figure::Data& d = *data_;
  if (row < 0 || row >= d.grid_rows || col < 0 || col >= d.grid_cols)
    throw Error(fmt::format("[Figure::panel] ({}, {}) is outside the {} x {} grid of panels", row,
                            col, d.grid_rows, d.grid_cols));
  const Layout& L = d.layout;
  return {L.panel_x[static_cast<std::size_t>(col)], L.panel_y[static_cast<std::size_t>(row)],
          L.panel_width, L.panel_height, d.shown_rows, d.shown_cols, L.cell_pixels};
}

std::string Figure::description() const {
  const Figure::Data& d = *data_;
  std::string s = fmt::format("Attention weights: {} x {} {} of {} x {} ({} x {})", d.grid_rows,
                              d.grid_cols, d.grid_rows * d.grid_cols == 1 ? "panel" : "panels",
                              d.lq, d.lk, d.ylabel.empty() ? "rows" : d.ylabel,
                              d.xlabel.empty() ? "columns" : d.xlabel);
  if (!d.titles.empty()) s += fmt::format(" titled {}", fmt::join(d.titles, ", "));
  s += fmt::format("; {} colour scale from {:g} to {:g}", colormap_name(d.colormap), d.vmin, d.vmax);
  if (!d.note.empty()) s += "; " + d.note;
  return s;
}

}  // namespace attn::plot
