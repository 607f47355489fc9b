// parse_npy_header: a recursive-descent parser for the one shape of Python literal
// that a .npy header is. numpy reads it with ast.literal_eval and then checks the
// types; here the grammar is the check:
//
//   header := ws '{' ws [entry ws (',' ws entry ws)* [',' ws]] '}' ws
//   entry  := key ws ':' ws value      keys: 'descr', 'fortran_order', 'shape'
//   descr  := string                   fortran_order := True | False
//   shape  := '(' ws ')' | '(' ws int ws ',' ws ')' | '(' ws int (ws ',' ws int)+ ws [','] ws ')'
//
// A position in a message is the byte offset within the header text.
#include "io/npy_header.hpp"

#include <fmt/format.h>

#include <cstdint>

namespace attn::io {
namespace {

constexpr std::string_view kKeys[] = {"descr", "fortran_order", "shape"};

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f'; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_ident(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || is_digit(c);
}

class HeaderParser {
 public:
  HeaderParser(std::string_view text, int major, const Source& source)
      : text_(text), major_(major), source_(source) {}

  NpyHeader parse() {
    NpyHeader header;
    bool seen[std::size(kKeys)] = {};
    skip_space();
    expect('{', "the header dict to open");
    while (true) {
      skip_space();
      if (peek() == '}') break;
      const std::size_t key_at = pos_;
      const std::string key = string("a key in quotes");
      std::size_t k = 0;
      while (k < std::size(kKeys) && kKeys[k] != key) ++k;
      if (k == std::size(kKeys))
        fail(key_at, fmt::format("unknown key '{}'; a .npy header has exactly 'descr', "
                                 "'fortran_order' and 'shape'",
                                 printable(key)));
      if (seen[k]) fail(key_at, fmt::format("duplicate key '{}'", key));
      seen[k] = true;
      skip_space();
      expect(':', fmt::format("':' after the key '{}'", key));
      skip_space();
      if (k == 0) header.descr = descr();
      if (k == 1) header.fortran_order = boolean();
      if (k == 2) header.shape = shape();
      skip_space();
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      if (peek() != '}') fail(pos_, "expected ',' or '}' after a value");
    }
    ++pos_;  // '}'
    skip_space();
    if (pos_ != text_.size()) fail(pos_, "unexpected text after the header dict");
    for (std::size_t k = 0; k < std::size(kKeys); ++k)
      if (!seen[k]) fail(pos_, fmt::format("the key '{}' is missing", kKeys[k]));
    return header;
  }

 private:
  [[noreturn]] void fail(std::size_t at, const std::string& problem) const {
    source_.fail(fmt::format("malformed header at byte {}: {}; header: {}", at, problem,
                             printable(text_)));
  }
  char peek() const { return pos_ < text_.size() ? text_[pos_] : '\0'; }
  void skip_space() {
    while (pos_ < text_.size() && is_space(text_[pos_])) ++pos_;
  }
  void expect(char c, const std::string& what) {
    if (pos_ >= text_.size() || text_[pos_] != c) fail(pos_, "expected " + what);
    ++pos_;
  }

  // A quoted string without escapes (numpy writes none; the dtypes they could
  // spell are not ones this reader converts).
  std::string string(const char* what) {
    const char quote = peek();
    if (quote != '\'' && quote != '"') fail(pos_, fmt::format("expected {}", what));
    const std::size_t start = ++pos_;
    while (pos_ < text_.size() && text_[pos_] != quote) {
      if (text_[pos_] == '\\') fail(pos_, "escape sequences are not supported in strings");
      if (text_[pos_] == '\n' || text_[pos_] == '\r') fail(pos_, "line break inside a string");
      ++pos_;
    }
    if (pos_ >= text_.size()) fail(start - 1, "unterminated string");
    return std::string(text_.substr(start, pos_++ - start));
  }

  std::string descr() {
    if (peek() == '[')
      source_.fail("unsupported dtype: a structured dtype (a list of fields); only plain "
                   "numeric dtypes are read");
    return string("the dtype ('descr') as a quoted string such as '<f4'");
  }

  bool boolean() {
    const std::size_t start = pos_;
    while (pos_ < text_.size() && is_ident(text_[pos_])) ++pos_;
    const std::string_view word = text_.substr(start, pos_ - start);
    if (word == "True") return true;
    if (word == "False") return false;
    fail(start, "'fortran_order' must be True or False");
  }

  // A non-negative decimal integer; numpy's files from Python 2 may end it in 'L'.
  std::int64_t size() {
    const std::size_t start = pos_;
    if (peek() == '-') {
      ++pos_;
      while (is_digit(peek())) ++pos_;
      fail(start, fmt::format("negative size {} in the shape",
                              printable(text_.substr(start, pos_ - start))));
    }
    if (!is_digit(peek())) fail(pos_, "expected a size (a non-negative integer) in the shape");
    if (peek() == '0' && pos_ + 1 < text_.size() && is_digit(text_[pos_ + 1]))
      fail(pos_, "a size with a leading zero");
    std::int64_t value = 0;
    bool overflow = false;
    while (is_digit(peek())) {
      overflow = overflow || __builtin_mul_overflow(value, 10, &value) ||
                 __builtin_add_overflow(value, text_[pos_] - '0', &value);
      ++pos_;
    }
    if (overflow)
      fail(start, fmt::format("size {} in the shape does not fit in int64",
                              printable(text_.substr(start, pos_ - start), 40)));
    if (major_ <= 2 && peek() == 'L') ++pos_;
    return value;
  }

  Shape shape() {
    expect('(', "the shape as a tuple, such as (2, 3) or (3,) or ()");
    Shape shape;
    skip_space();
    if (peek() == ')') {
      ++pos_;
      return shape;
    }
    while (true) {
      shape.push_back(size());
      skip_space();
      const bool comma = peek() == ',';
      if (comma) {
        ++pos_;
        skip_space();
      }
      if (peek() == ')') {
        if (shape.size() == 1 && !comma)
          fail(pos_, "the shape (n) is a number, not a tuple: a 1-d shape is written (n,)");
        ++pos_;
        return shape;
      }
      if (!comma) fail(pos_, "expected ',' or ')' in the shape");
    }
  }

  std::string_view text_;
  std::size_t pos_ = 0;
  int major_;
  const Source& source_;
};

}  // namespace

NpyHeader parse_npy_header(std::string_view text, int major, const Source& source) {
  if (major < 3) {
    for (std::size_t i = 0; i < text.size(); ++i)
      if (static_cast<unsigned char>(text[i]) >= 0x80)
        source.fail(fmt::format("header byte {} is 0x{:02X}, not ASCII (only format version "
                                "3.0 allows UTF-8 in the header)",
                                i, static_cast<unsigned char>(text[i])));
  } else if (const std::size_t at = invalid_utf8_at(text); at != std::string_view::npos) {
    source.fail(fmt::format("header byte {} is 0x{:02X}, which breaks UTF-8", at,
                            static_cast<unsigned char>(text[at])));
  }
  return HeaderParser(text, major, source).parse();
}

}  // namespace attn::io
