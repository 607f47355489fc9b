// Helpers of the picture tests: a fresh folder per test, files read back, PNGs
// decoded with cairo, and the external tools that render SVG and PDF.
#pragma once

#include <cairo.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "attn/plot.hpp"
#include "test_util.hpp"

namespace attn::test {

// test_dir() and read_file() come from test_util.hpp.

struct Image {
  int width = 0, height = 0;
  std::vector<std::uint32_t> pixels;  // row-major, 0x00RRGGBB (alpha ignored)
  plot::Rgb at(int x, int y) const {
    const std::uint32_t p = pixels[static_cast<std::size_t>(y) * width + x];
    return {static_cast<std::uint8_t>(p >> 16), static_cast<std::uint8_t>(p >> 8),
            static_cast<std::uint8_t>(p)};
  }
};

// Decodes a PNG with cairo; a test failure and an empty image when it cannot.
inline Image read_png(const std::filesystem::path& path) {
  cairo_surface_t* s = cairo_image_surface_create_from_png(path.c_str());
  Image image;
  if (cairo_surface_status(s) != CAIRO_STATUS_SUCCESS) {
    ADD_FAILURE() << path << ": " << cairo_status_to_string(cairo_surface_status(s));
    cairo_surface_destroy(s);
    return image;
  }
  cairo_surface_flush(s);
  const cairo_format_t format = cairo_image_surface_get_format(s);
  EXPECT_TRUE(format == CAIRO_FORMAT_RGB24 || format == CAIRO_FORMAT_ARGB32) << format;
  image.width = cairo_image_surface_get_width(s);
  image.height = cairo_image_surface_get_height(s);
  const int stride = cairo_image_surface_get_stride(s);
  const unsigned char* data = cairo_image_surface_get_data(s);
  for (int y = 0; y < image.height; ++y) {
    const auto* row = reinterpret_cast<const std::uint32_t*>(data + y * stride);
    image.pixels.insert(image.pixels.end(), row, row + image.width);
  }
  cairo_surface_destroy(s);
  return image;
}

inline std::string hex(plot::Rgb c) {
  char s[8];
  std::snprintf(s, sizeof s, "#%02x%02x%02x", c.r, c.g, c.b);
  return s;
}

// `path` in single quotes for /bin/sh.
inline std::string quoted(const std::filesystem::path& path) {
  std::string out = "'";
  for (const char c : path.string()) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// Runs a shell command with one of the tools the test command installs (xmllint,
// rsvg-convert, pdftoppm, pdfinfo). Returns "" when it succeeds without output, or
// its output when want_output. A failure, or a missing tool, fails the test with what
// the command printed.
inline std::string run_tool(const std::string& command, bool want_output = false) {
  const std::filesystem::path log = test_dir() / "tool-output.txt";
  const int status = std::system((command + " > " + quoted(log) + " 2>&1").c_str());
  const std::string output = read_file(log);
  if (status != 0) {
    ADD_FAILURE() << command << " failed (status " << status << "):\n" << output
                  << "(scripts/install-deps --test installs the tools the tests run)";
    return "failed: " + output;
  }
  if (want_output) return output;
  return output.empty() ? std::string() : "unexpected output: " + output;
}

}  // namespace attn::test
