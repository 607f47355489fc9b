// parse_safetensors_header: nlohmann-json parses the text; a parser callback refuses
// duplicate keys and deep nesting while it parses (the DOM would silently keep the
// last of two equal keys); then every entry is checked, and last the byte ranges
// against the data, sorted by offset, as the reference implementation does.
#include "io/safetensors_header.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <limits>
#include <optional>
#include <nlohmann/json.hpp>
#include <set>

#include "io/safetensors_dtype.hpp"

namespace attn::io {
namespace {

// ordered_json keeps the entries in the header's order.
using Json = nlohmann::ordered_json;

constexpr std::string_view kMetadataKey = "__metadata__";

// An object or array starting at this depth would be a fourth level: the header is
// {name: {key: [size, ...]}} at most.
constexpr int kMaxContainerDepth = 2;

std::string in_quotes(std::string_view name) { return fmt::format("'{}'", printable(name)); }

// What a duplicate key is, in the words of its place in the header.
std::string duplicate_key(int depth, const std::string& key, const std::string& entry) {
  if (depth == 1)
    return key == kMetadataKey ? "the key '__metadata__' appears twice"
                               : fmt::format("the tensor name {} appears twice", in_quotes(key));
  if (entry == kMetadataKey) return fmt::format("__metadata__: the key {} appears twice", in_quotes(key));
  return fmt::format("tensor {}: the key {} appears twice", in_quotes(entry), in_quotes(key));
}

Json parse_json(std::string_view text, const Source& source) {
  // Keys seen in each open object, innermost last; the entry being parsed.
  std::vector<std::set<std::string>> open_objects;
  std::string entry;
  const Json::parser_callback_t guard = [&](int depth, Json::parse_event_t event, Json& parsed) {
    using Event = Json::parse_event_t;
    if ((event == Event::object_start || event == Event::array_start) && depth > kMaxContainerDepth)
      source.fail(fmt::format("the entry {} nests deeper than a safetensors header: its values "
                              "are strings, arrays of integers or (for __metadata__) strings",
                              in_quotes(entry)));
    if (event == Event::object_start) open_objects.emplace_back();
    if (event == Event::object_end) open_objects.pop_back();
    if (event == Event::key) {
      const auto& key = parsed.get_ref<const std::string&>();
      if (depth == 1) entry = key;
      if (!open_objects.back().insert(key).second) source.fail(duplicate_key(depth, key, entry));
    }
    return true;
  };
  try {
    return Json::parse(text.begin(), text.end(), guard);
  } catch (const Json::exception& e) {
    // e.what() is "[json.exception.parse_error.101] parse error at line 1, column 9: ...".
    std::string_view what = e.what();
    if (const std::size_t end = what.find("] "); what.starts_with("[json.") && end != what.npos)
      what.remove_prefix(end + 2);
    source.fail("the header is not valid JSON: " + printable(what, 240));
  }
}

// The value as a non-negative integer, or nothing ("-0" parses as a signed zero).
std::optional<std::uint64_t> non_negative(const Json& v) {
  if (v.is_number_unsigned()) return v.get<std::uint64_t>();
  if (v.is_number_integer() && v.get<std::int64_t>() == 0) return 0;
  return std::nullopt;
}

std::string shown(const Json& v) { return printable(v.dump(), 80); }

class EntryReader {
 public:
  EntryReader(const std::string& name, const Json& value, const Source& source)
      : name_(name), value_(value), source_(source) {}

  SafetensorsEntry read() {
    if (!value_.is_object())
      fail(fmt::format("expected an object with dtype, shape and data_offsets, got {}", shown(value_)));
    SafetensorsEntry e;
    e.name = name_;
    const Json& dtype = field("dtype");
    if (!dtype.is_string()) fail(fmt::format("'dtype' must be a string such as \"F32\", got {}", shown(dtype)));
    e.dtype = dtype.get<std::string>();
    e.type = parse_safetensors_dtype(e.dtype, name_, source_);
    e.shape = shape();
    const auto [begin, end] = offsets();
    e.begin = begin;
    e.end = end;
    e.numel = numel(e.shape);
    std::uint64_t bytes = 0;
    if (__builtin_mul_overflow(static_cast<std::uint64_t>(e.numel), e.type.size, &bytes))
      fail(fmt::format("shape {} of {} needs more bytes than 64 bits can count", shape_str(e.shape), e.dtype));
    if (end < begin) fail(fmt::format("data_offsets [{}, {}] end before they begin", begin, end));
    if (end - begin != bytes)
      fail(fmt::format("data_offsets [{}, {}] hold {} bytes, shape {} of {} needs {}", begin, end,
                       end - begin, shape_str(e.shape), e.dtype, bytes));
    return e;
  }

 private:
  [[noreturn]] void fail(const std::string& problem) const {
    source_.fail(fmt::format("tensor {}: {}", in_quotes(name_), problem));
  }

  const Json& field(const char* key) const {
    const auto it = value_.find(key);
    if (it == value_.end()) fail(fmt::format("the key '{}' is missing", key));
    return *it;
  }

  Shape shape() const {
    const Json& s = field("shape");
    const auto refuse = [&] {
      fail(fmt::format("'shape' must be an array of sizes (integers from 0 to 2^63 - 1), got {}", shown(s)));
    };
    if (!s.is_array()) refuse();
    Shape shape;
    for (const Json& size : s) {
      const auto n = non_negative(size);
      if (!n || *n > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) refuse();
      shape.push_back(static_cast<std::int64_t>(*n));
    }
    return shape;
  }

  std::pair<std::uint64_t, std::uint64_t> offsets() const {
    const Json& o = field("data_offsets");
    std::optional<std::uint64_t> begin, end;
    if (o.is_array() && o.size() == 2) {
      begin = non_negative(o[0]);
      end = non_negative(o[1]);
    }
    if (!begin || !end)
      fail(fmt::format("'data_offsets' must be [begin, end], two integers from 0 to 2^64 - 1, got {}", shown(o)));
    return {*begin, *end};
  }

  // 0 when any size is 0, else the product, which must fit int64.
  std::int64_t numel(const Shape& shape) const {
    if (std::find(shape.begin(), shape.end(), 0) != shape.end()) return 0;
    std::int64_t n = 1;
    for (std::int64_t s : shape)
      if (__builtin_mul_overflow(n, s, &n))
        fail(fmt::format("shape {} has more elements than int64 can count", shape_str(shape)));
    return n;
  }

  const std::string& name_;
  const Json& value_;
  const Source& source_;
};

Metadata read_metadata(const Json& value, const Source& source) {
  Metadata metadata;
  if (value.is_null()) return metadata;  // what the reference reads as "no metadata"
  if (!value.is_object())
    source.fail(fmt::format("__metadata__ must be an object of strings, got {}", shown(value)));
  for (const auto& [key, v] : value.items()) {
    if (!v.is_string())
      source.fail(fmt::format("__metadata__: the value of {} must be a string, got {}", in_quotes(key), shown(v)));
    metadata.emplace(key, v.get<std::string>());
  }
  return metadata;
}

// The entries' byte ranges, in offset order, must tile [0, data_bytes).
void check_layout(const std::vector<SafetensorsEntry>& entries, std::uint64_t data_bytes,
                  const Source& source) {
  for (const SafetensorsEntry& e : entries)
    if (e.end > data_bytes)
      source.fail(fmt::format("tensor {}: data_offsets [{}, {}] go beyond the {} bytes of data "
                              "after the header (is the file truncated?)",
                              in_quotes(e.name), e.begin, e.end, data_bytes));
  std::vector<const SafetensorsEntry*> sorted;
  for (const SafetensorsEntry& e : entries) sorted.push_back(&e);
  std::stable_sort(sorted.begin(), sorted.end(), [](const auto* a, const auto* b) {
    return std::pair(a->begin, a->end) < std::pair(b->begin, b->end);
  });
  std::uint64_t covered = 0;  // bytes [0, covered) belong to the tensors so far
  const SafetensorsEntry* previous = nullptr;
  for (const SafetensorsEntry* e : sorted) {
    if (e->begin > covered)
      source.fail(fmt::format("bytes [{}, {}) of the data belong to no tensor (a hole before "
                              "tensor {})",
                              covered, e->begin, in_quotes(e->name)));
    if (e->begin < covered)
      source.fail(fmt::format("tensor {} at bytes [{}, {}) overlaps tensor {} at [{}, {})",
                              in_quotes(e->name), e->begin, e->end, in_quotes(previous->name),
                              previous->begin, previous->end));
    covered = e->end;
    previous = e;
  }
  if (covered != data_bytes)
    source.fail(fmt::format("the data after the header has {} bytes, the tensors cover {}: "
                            "bytes [{}, {}) belong to no tensor",
                            data_bytes, covered, covered, data_bytes));
}

}  // namespace

SafetensorsHeader parse_safetensors_header(std::string_view text, std::uint64_t data_bytes,
                                           const Source& source) {
  // The format asks for '{' first; so the root is an object.
  if (text.empty()) source.fail("the header is empty (its length is 0); it must be a JSON object");
  if (text[0] != '{')
    source.fail(fmt::format("the header must start with '{{', it starts with '{}'",
                            printable(text, 20)));
  if (const std::size_t at = invalid_utf8_at(text); at != std::string_view::npos)
    source.fail(fmt::format("header byte {} is 0x{:02X}, which breaks UTF-8", at,
                            static_cast<unsigned char>(text[at])));
  // JSON allows no raw NUL, and nlohmann-json would read one as the end of the input.
  if (const std::size_t at = text.find('\0'); at != std::string_view::npos)
    source.fail(fmt::format("header byte {} is NUL, which JSON does not allow", at));

  const Json root = parse_json(text, source);
  SafetensorsHeader header;
  for (const auto& [key, value] : root.items()) {
    if (key == kMetadataKey) {
      header.metadata = read_metadata(value, source);
    } else {
      header.entries.push_back(EntryReader(key, value, source).read());
    }
  }
  check_layout(header.entries, data_bytes, source);
  return header;
}

}  // namespace attn::io
