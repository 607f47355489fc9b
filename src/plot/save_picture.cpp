// save_picture: the cairo surface for the extension, one draw, the bytes to disk.
#include "plot/save_picture.hpp"

#include <cairo-pdf.h>
#include <cairo-svg.h>
#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <memory>

#include "attn/error.hpp"

namespace attn::plot {
namespace {

using SurfacePtr = std::unique_ptr<cairo_surface_t, decltype(&cairo_surface_destroy)>;
using ContextPtr = std::unique_ptr<cairo_t, decltype(&cairo_destroy)>;

enum class Format { png, svg, pdf };

// cairo's image surfaces hold at most this many pixels per side.
constexpr int kMaxPictureSide = 32767;

struct Failure {
  std::string_view op;
  const std::string& path;
  [[noreturn]] void operator()(const std::string& message) const {
    throw Error(fmt::format("[{}] path '{}': {}", op, path, message));
  }
};

Format format_of(const std::string& path, const Failure& fail) {
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
  fail(fmt::format("unknown extension '{}'; expected .png, .svg or .pdf", ext));
}

cairo_status_t append_to_string(void* closure, const unsigned char* data, unsigned int length) {
  static_cast<std::string*>(closure)->append(reinterpret_cast<const char*>(data), length);
  return CAIRO_STATUS_SUCCESS;
}

std::string xml_escape(const std::string& text) {
  std::string out;
  for (char ch : text) {
    switch (ch) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += ch;
    }
  }
  return out;
}

void check(cairo_status_t status, const Failure& fail) {
  if (status != CAIRO_STATUS_SUCCESS)
    fail(fmt::format("cairo could not draw the picture: {}", cairo_status_to_string(status)));
}

// Draws into `surface`; the caller finishes it, which writes its stream.
void render(cairo_surface_t* surface, const std::function<void(cairo_t*)>& draw,
            const Failure& fail) {
  check(cairo_surface_status(surface), fail);
  ContextPtr cr(cairo_create(surface), cairo_destroy);
  draw(cr.get());
  check(cairo_status(cr.get()), fail);
  cairo_surface_flush(surface);
}

}  // namespace

void save_picture(const std::string& path, int width, int height, const std::string& description,
                  std::string_view op, const std::function<void(cairo_t*)>& draw) {
  const Failure fail{op, path};
  const Format format = format_of(path, fail);
  if (width < 1 || height < 1 || width > kMaxPictureSide || height > kMaxPictureSide)
    fail(fmt::format("a picture of {} x {} pixels; cairo holds 1 to {} per side", width, height,
                     kMaxPictureSide));
  std::string bytes;
  if (format == Format::png) {
    SurfacePtr surface(cairo_image_surface_create(CAIRO_FORMAT_RGB24, width, height),
                       cairo_surface_destroy);
    render(surface.get(), draw, fail);
    check(cairo_surface_write_to_png_stream(surface.get(), append_to_string, &bytes), fail);
  } else if (format == Format::svg) {
    SurfacePtr surface(cairo_svg_surface_create_for_stream(append_to_string, &bytes, width, height),
                       cairo_surface_destroy);
    cairo_svg_surface_set_document_unit(surface.get(), CAIRO_SVG_UNIT_PX);
    render(surface.get(), draw, fail);
    cairo_surface_finish(surface.get());
    check(cairo_surface_status(surface.get()), fail);
    // cairo writes text as glyph outlines; the description goes in as the document's
    // <title>, for screen readers and search.
    const std::size_t svg = bytes.find("<svg");
    const std::size_t end = svg == std::string::npos ? svg : bytes.find('>', svg);
    if (end != std::string::npos)
      bytes.insert(end + 1, "\n<title>" + xml_escape(description) + "</title>");
  } else {
    SurfacePtr surface(cairo_pdf_surface_create_for_stream(append_to_string, &bytes, width, height),
                       cairo_surface_destroy);
    cairo_pdf_surface_set_metadata(surface.get(), CAIRO_PDF_METADATA_TITLE, description.c_str());
    cairo_pdf_surface_set_metadata(surface.get(), CAIRO_PDF_METADATA_CREATOR, "attn");
    render(surface.get(), draw, fail);
    cairo_surface_finish(surface.get());
    check(cairo_surface_status(surface.get()), fail);
  }

  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) fail(fmt::format("cannot open for writing: {}", std::strerror(errno)));
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  out.close();
  if (!out) fail(fmt::format("writing {} bytes failed: {}", bytes.size(), std::strerror(errno)));
}

}  // namespace attn::plot
