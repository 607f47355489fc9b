// attn::io safetensors: files built byte by byte from the format's description with
// known values of every dtype; the writer's bytes against the reference writer's
// layout; round trips; every error with its message; and a seeded mutation test that
// only ever gets tensors or an attn::Error back (run under ASan, it also shows that
// nothing reads out of bounds).
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "attn/safetensors.hpp"
#include "attn/tensor.hpp"
#include "mutation_harness.hpp"
#include "test_util.hpp"

using attn::Shape;
using attn::Tensor;
using attn::io::load_safetensors;
using attn::io::parse_safetensors;
using attn::io::save_safetensors;
using attn::io::SafetensorsFile;
using attn::io::serialize_safetensors;
using attn::test::error_of;
using attn::test::HasSubstrs;
using attn::test::kInf;
using attn::test::test_dir;
using ::testing::HasSubstr;

namespace fs = std::filesystem;

namespace {

using Bytes = std::vector<std::uint8_t>;

// ---- building files ---------------------------------------------------------------------

// A safetensors file: the 8-byte little-endian length of `header`, `header`, `data`.
Bytes file(const std::string& header, const Bytes& data = {}) {
  Bytes out;
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<std::uint8_t>(header.size() >> (8 * i)));
  out.insert(out.end(), header.begin(), header.end());
  out.insert(out.end(), data.begin(), data.end());
  return out;
}

// The little-endian bytes of `values` as T.
template <class T>
Bytes encode(const std::vector<T>& values) {
  Bytes out;
  for (T v : values) {
    std::uint8_t b[sizeof(T)];
    std::memcpy(b, &v, sizeof(T));
    const bool swap = std::endian::native == std::endian::big;
    for (std::size_t i = 0; i < sizeof(T); ++i) out.push_back(b[swap ? sizeof(T) - 1 - i : i]);
  }
  return out;
}

std::string json_shape(const Shape& shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i > 0) s += ',';
    s += std::to_string(shape[i]);  // appended, not "," + ...: GCC 12 warns falsely (-Wrestrict)
  }
  return s + "]";
}

// One header entry, as the format describes it.
std::string entry(const std::string& name, const std::string& dtype, const Shape& shape,
                  std::uint64_t begin, std::uint64_t end) {
  return "\"" + name + "\":{\"dtype\":\"" + dtype + "\",\"shape\":" + json_shape(shape) +
         ",\"data_offsets\":[" + std::to_string(begin) + "," + std::to_string(end) + "]}";
}

struct Piece {
  std::string name, dtype;
  Shape shape;
  Bytes data;
};

// A valid file of `pieces`, their data back to back in the given order.
Bytes file_of(const std::vector<Piece>& pieces, const std::string& metadata = "") {
  std::string header = "{" + metadata;
  Bytes data;
  for (const Piece& p : pieces) {
    if (header.size() > 1) header += ",";
    header += entry(p.name, p.dtype, p.shape, data.size(), data.size() + p.data.size());
    data.insert(data.end(), p.data.begin(), p.data.end());
  }
  return file(header + "}", data);
}

SafetensorsFile parse(const Bytes& bytes) { return parse_safetensors(bytes, "test.safetensors"); }
std::string parse_error(const Bytes& bytes) {
  return error_of([&] { parse(bytes); });
}
std::string header_error(const std::string& header, const Bytes& data = {}) {
  return parse_error(file(header, data));
}

// Elements equal bit for bit (so -0.0 differs from 0.0), any NaN matching a NaN.
void expect_bits(const Tensor& t, const std::vector<float>& want, const std::string& what) {
  const std::vector<float> got = t.to_vector();
  ASSERT_EQ(got.size(), want.size()) << what;
  for (std::size_t i = 0; i < got.size(); ++i) {
    if (std::isnan(want[i])) {
      EXPECT_TRUE(std::isnan(got[i])) << what << " [" << i << "]: " << got[i];
    } else {
      EXPECT_EQ(std::bit_cast<std::uint32_t>(got[i]), std::bit_cast<std::uint32_t>(want[i]))
          << what << " [" << i << "]: got " << got[i] << ", want " << want[i];
    }
  }
}

// ---- valid files ----------------------------------------------------------------------------

TEST(SafetensorsRead, EveryDtypeConvertsToFloat) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  struct Case {
    Piece piece;
    std::vector<float> want;
  };
  const std::vector<Case> cases = {
      {{"bool", "BOOL", {4}, {0, 1, 2, 255}}, {0, 1, 1, 1}},
      {{"u8", "U8", {2}, encode<std::uint8_t>({0, 255})}, {0, 255}},
      {{"i8", "I8", {2}, encode<std::int8_t>({-128, 127})}, {-128, 127}},
      {{"u16", "U16", {1}, encode<std::uint16_t>({65535})}, {65535}},
      {{"i16", "I16", {2}, encode<std::int16_t>({-32768, 7})}, {-32768, 7}},
      {{"u32", "U32", {1}, encode<std::uint32_t>({4294967295u})}, {4294967296.0f}},
      {{"i32", "I32", {1}, encode<std::int32_t>({INT32_MIN})}, {-2147483648.0f}},
      {{"u64", "U64", {1}, encode<std::uint64_t>({UINT64_MAX})}, {18446744073709551616.0f}},
      // 2^24 + 1 has no float; it rounds to nearest even, 2^24.
      {{"i64", "I64", {3}, encode<std::int64_t>({INT64_MIN, (1 << 24) + 1, -3})},
       {-9223372036854775808.0f, 16777216.0f, -3}},
      // F16: 1, the smallest and largest subnormals (2^-24, 1023 * 2^-24), the largest
      // normal 65504, +-inf, NaN and -0.
      {{"f16", "F16", {8},
        encode<std::uint16_t>({0x3C00, 0x0001, 0x03FF, 0x7BFF, 0x7C00, 0xFC00, 0x7E00, 0x8000})},
       {1, std::ldexp(1.0f, -24), std::ldexp(1023.0f, -24), 65504, kInf, -kInf, nan, -0.0f}},
      // BF16: the upper half of a float: 1, -2, the smallest subnormal 2^-133, the
      // largest finite, inf, NaN, -0.
      {{"bf16", "BF16", {7},
        encode<std::uint16_t>({0x3F80, 0xC000, 0x0001, 0x7F7F, 0x7F80, 0x7FC0, 0x8000})},
       {1, -2, std::ldexp(1.0f, -133), std::bit_cast<float>(0x7F7F0000u), kInf, nan, -0.0f}},
      {{"f32", "F32", {3}, encode<float>({1.5f, -0.0f, std::bit_cast<float>(0x7FC00001u)})},
       {1.5f, -0.0f, nan}},
      // F64 rounds to nearest; beyond float's range it becomes inf, below it 0.
      {{"f64", "F64", {4}, encode<double>({0.1, -1e300, 1e-50, 3})},
       {0.1f, -kInf, 0, 3}},
  };
  std::vector<Piece> pieces;
  for (const Case& c : cases) pieces.push_back(c.piece);
  const SafetensorsFile f = parse(file_of(pieces));
  ASSERT_EQ(f.tensors.size(), cases.size());
  for (std::size_t i = 0; i < cases.size(); ++i) {
    EXPECT_EQ(f.tensors[i].first, cases[i].piece.name);
    EXPECT_EQ(f.tensors[i].second.shape(), cases[i].piece.shape) << cases[i].piece.name;
    expect_bits(f.tensors[i].second, cases[i].want, cases[i].piece.name);
  }
  // The F32 NaN keeps its payload: F32 data is copied bit for bit.
  EXPECT_EQ(std::bit_cast<std::uint32_t>(f.at("f32").data()[2]), 0x7FC00001u);
}

TEST(SafetensorsRead, ShapesAreRowMajor) {
  const SafetensorsFile f = parse(file_of({
      {"cube", "F32", {2, 1, 3}, encode<float>({0, 1, 2, 3, 4, 5})},
      {"scalar", "I64", {}, encode<std::int64_t>({42})},
      {"empty", "F16", {0, 3}, {}},
      {"also_empty", "F64", {4, 0}, {}},
  }));
  const Tensor& cube = f.at("cube");
  EXPECT_EQ(cube.shape(), (Shape{2, 1, 3}));
  EXPECT_EQ(cube.strides(), attn::contiguous_strides({2, 1, 3}));
  EXPECT_EQ(cube(1, 0, 2), 5);
  EXPECT_EQ(cube(0, 0, 1), 1);
  EXPECT_EQ(f.at("scalar").shape(), Shape{});
  EXPECT_EQ(f.at("scalar").to_vector(), std::vector<float>{42});
  EXPECT_EQ(f.at("empty").shape(), (Shape{0, 3}));
  EXPECT_EQ(f.at("also_empty").numel(), 0);
}

TEST(SafetensorsRead, HeaderOrderMetadataAndSpellings) {
  // Entries in any order of their data, keys inside an entry in any order, unknown
  // keys ignored (as the reference does), metadata anywhere, whitespace between
  // tokens and as padding at the end.
  const Bytes data = encode<float>({1, 2, 3});
  const std::string header =
      "{ \"z\" : {\"data_offsets\": [8, 12], \"shape\": [1], \"dtype\": \"F32\", \"note\": \"x\"},\n"
      "\t\"__metadata__\": {\"format\": \"pt\", \"caf\\u00e9\": \"\\\"quoted\\\"\\n\"},\r\n"
      "  \"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}}  \n\t\r ";
  const SafetensorsFile f = parse(file(header, data));
  ASSERT_EQ(attn::test::names_of(f.tensors), (std::vector<std::string>{"z", "a"}));
  EXPECT_EQ(f.at("z").to_vector(), std::vector<float>{3});
  EXPECT_EQ(f.at("a").to_vector(), (std::vector<float>{1, 2}));
  EXPECT_EQ(f.metadata, (attn::io::Metadata{{"format", "pt"}, {"caf\xC3\xA9", "\"quoted\"\n"}}));

  // "__metadata__": null is no metadata (the reference reads it so).
  EXPECT_TRUE(parse(file("{\"__metadata__\": null}")).metadata.empty());
  // Zero-size tensors may share an offset; a file may hold no tensor at all.
  const SafetensorsFile empty = parse(file("{" + entry("a", "F32", {0}, 0, 0) + "," +
                                           entry("b", "U8", {2, 0}, 0, 0) + "}"));
  EXPECT_EQ(empty.tensors.size(), 2u);
  EXPECT_TRUE(parse(file("{}")).tensors.empty());
}

TEST(SafetensorsRead, AtNamesWhatTheFileHas) {
  const SafetensorsFile f = parse(file_of({{"w", "F32", {1}, encode<float>({1})},
                                           {"b", "F32", {1}, encode<float>({2})}}));
  EXPECT_EQ(f.find("nope"), nullptr);
  EXPECT_EQ(f.find("b")->to_vector(), std::vector<float>{2});
  EXPECT_THAT(error_of([&] { f.at("bias"); }),
              HasSubstrs({"[SafetensorsFile::at] no tensor 'bias'", "the file has 'w', 'b'"}));
  EXPECT_THAT(error_of([] { SafetensorsFile().at("x"); }), HasSubstr("the file has none"));
}

// ---- writing -----------------------------------------------------------------------------------

std::string header_of(const Bytes& bytes) {
  std::uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = n << 8 | bytes[i];
  return {reinterpret_cast<const char*>(bytes.data()) + 8, n};
}

TEST(SafetensorsWrite, BytesAreTheReferenceWritersLayout) {
  // The reference writer's own examples: compact JSON, padded with spaces to a
  // multiple of 8, "__metadata__" first, tensors sorted by name.
  EXPECT_EQ(serialize_safetensors({}), file("{}      "));
  EXPECT_EQ(serialize_safetensors({}, {{"framework", "pt"}}),
            file("{\"__metadata__\":{\"framework\":\"pt\"}}     "));
  const Tensor t = Tensor::from({1, 2, 3}, {0, 1, 2, 3, 4, 5});
  EXPECT_EQ(serialize_safetensors({{"attn.0", t}}),
            file("{\"attn.0\":{\"dtype\":\"F32\",\"shape\":[1,2,3],\"data_offsets\":[0,24]}}",
                 encode<float>({0, 1, 2, 3, 4, 5})));
  EXPECT_EQ(serialize_safetensors({{"attn0", t.reshape({1, 1, 2, 3})}}),
            file("{\"attn0\":{\"dtype\":\"F32\",\"shape\":[1,1,2,3],\"data_offsets\":[0,24]}}       ",
                 encode<float>({0, 1, 2, 3, 4, 5})));

  const Bytes sorted = serialize_safetensors({{"b", Tensor::full({1}, 2)}, {"a", Tensor::full({2}, 1)}});
  EXPECT_EQ(header_of(sorted),
            "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
            "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}    ");
  EXPECT_EQ(Bytes(sorted.end() - 12, sorted.end()), encode<float>({1, 1, 2}));
  EXPECT_EQ(header_of(sorted).size() % 8, 0u);
}

TEST(SafetensorsWrite, RoundTripsThroughAFile) {
  attn::Rng rng(7);
  const Tensor w = Tensor::randn({3, 4}, rng);
  const Tensor special = Tensor::from({4}, {kInf, -0.0f, std::bit_cast<float>(0x7FC00123u), 1e-45f});
  const attn::io::NamedTensors tensors = {
      {"layer.weight", w},
      {"layer.weight_t", w.transpose(0, 1)},  // a strided view: written in logical order
      {"special", special},
      {"scalar", Tensor::full({}, 3)},
      {"empty", Tensor::zeros({0, 5})},
      {"caf\xC3\xA9 \"quoted\" \\ \n", Tensor::full({1}, 1)},
  };
  const attn::io::Metadata metadata = {{"format", "pt"}, {"note", "tab\there \xE2\x9C\x93"}};
  const fs::path path = test_dir() / "round.safetensors";
  save_safetensors(path.string(), tensors, metadata);
  const SafetensorsFile back = load_safetensors(path.string());
  EXPECT_EQ(back.metadata, metadata);
  ASSERT_EQ(back.tensors.size(), tensors.size());
  for (const auto& [name, t] : tensors) {
    const Tensor* got = back.find(name);
    ASSERT_NE(got, nullptr) << name;
    EXPECT_EQ(got->shape(), t.shape()) << name;
    const std::vector<float> a = got->to_vector(), b = t.to_vector();
    for (std::size_t i = 0; i < a.size(); ++i)
      EXPECT_EQ(std::bit_cast<std::uint32_t>(a[i]), std::bit_cast<std::uint32_t>(b[i])) << name << i;
  }
  EXPECT_EQ(attn::test::read_file(path), std::string(reinterpret_cast<const char*>(
                                                         serialize_safetensors(tensors, metadata).data()),
                                                     serialize_safetensors(tensors, metadata).size()));
}

TEST(SafetensorsWrite, Errors) {
  const Tensor one = Tensor::zeros({1});
  EXPECT_THAT(error_of([&] { serialize_safetensors({{"w", Tensor()}}); }),
              HasSubstrs({"[serialize_safetensors] tensors: tensor 'w' is undefined"}));
  EXPECT_THAT(error_of([&] { serialize_safetensors({{"w", one}, {"b", one}, {"w", one}}); }),
              HasSubstr("the tensor name 'w' appears twice"));
  EXPECT_THAT(error_of([&] { serialize_safetensors({{"__metadata__", one}}); }),
              HasSubstr("the tensor name '__metadata__' is reserved for the file's metadata"));
  EXPECT_THAT(error_of([&] { serialize_safetensors({{"w\xFF", one}}); }),
              HasSubstr("the tensor name 'w\\xff' is not UTF-8 (byte 1 is 0xFF)"));
  EXPECT_THAT(error_of([&] { serialize_safetensors({}, {{"k", "\xC0\xAF"}}); }),
              HasSubstr("the metadata value '\\xc0\\xaf' is not UTF-8 (byte 0 is 0xC0)"));
  EXPECT_THAT(error_of([&] { serialize_safetensors({}, {{"\xED\xA0\x80", "v"}}); }),
              HasSubstr("the metadata key"));
  const std::string path = (test_dir() / "no-such-folder" / "w.safetensors").string();
  EXPECT_THAT(error_of([&] { save_safetensors(path, {{"w", one}}); }),
              HasSubstrs({"[save_safetensors] " + path, "cannot open the file for writing",
                          "No such file or directory"}));
}

// ---- reading files ---------------------------------------------------------------------------

TEST(SafetensorsLoad, FilesThatCannotBeRead) {
  const fs::path dir = test_dir();
  const std::string missing = (dir / "missing.safetensors").string();
  EXPECT_THAT(error_of([&] { load_safetensors(missing); }),
              HasSubstrs({"[load_safetensors] " + missing + ": cannot open the file",
                          "No such file or directory"}));
  EXPECT_THAT(error_of([&] { load_safetensors(dir.string()); }),
              HasSubstrs({"[load_safetensors] " + dir.string(), "Is a directory"}));
  const fs::path empty = dir / "empty.safetensors";
  std::ofstream(empty).close();
  EXPECT_THAT(error_of([&] { load_safetensors(empty.string()); }),
              HasSubstrs({"[load_safetensors] " + empty.string(),
                          "not a safetensors file: the file is empty"}));
}

TEST(SafetensorsLoad, ReadsAPipe) {
  // What cannot be mapped is read to its end.
  const fs::path fifo = test_dir() / "pipe.safetensors";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  const Bytes bytes = serialize_safetensors({{"w", Tensor::from({2}, {1, 2})}});
  std::thread writer([&] {
    std::ofstream(fifo, std::ios::binary)
        .write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  });
  const SafetensorsFile f = load_safetensors(fifo.string());
  writer.join();
  EXPECT_EQ(f.at("w").to_vector(), (std::vector<float>{1, 2}));
}

// ---- errors -----------------------------------------------------------------------------------

TEST(SafetensorsErrors, HeaderLength) {
  EXPECT_THAT(parse_error({}), HasSubstr("[parse_safetensors] test.safetensors: not a "
                                         "safetensors file: the file is empty"));
  EXPECT_THAT(parse_error({1, 0, 0, 0, 0}),
              HasSubstr("the file ends after 5 bytes, inside the 8-byte header length"));
  Bytes huge = file("{}");
  huge[0] = 0x01, huge[1] = 0xE1, huge[2] = 0xF5, huge[3] = 0x05;  // 100,000,001
  EXPECT_THAT(parse_error(huge), HasSubstr("header length 100000001 is above the 100000000 "
                                           "bytes a safetensors header may have"));
  for (int byte = 3; byte < 8; ++byte) {
    Bytes b = file("{}");
    b[byte] = 0x80;
    EXPECT_THAT(parse_error(b), HasSubstr("is above the 100000000 bytes")) << byte;
  }
  const Bytes zip = {'P', 'K', 3, 4, 20, 0, 0, 0, 8, 0};
  EXPECT_THAT(parse_error(zip), HasSubstr("(the file is a zip archive, as torch.save writes"));
  const Bytes npy = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, 0x76, 0};
  EXPECT_THAT(parse_error(npy), HasSubstr("(the file is a .npy array: read it with read_npy)"));
  Bytes beyond = file("{}", Bytes(20, 0));
  beyond[0] = 0xF4, beyond[1] = 0x01;  // 500
  EXPECT_THAT(parse_error(beyond), HasSubstr("header length 500 goes beyond the end of the "
                                             "file: 22 bytes follow the 8-byte length"));
  EXPECT_THAT(header_error(""), HasSubstr("the header is empty (its length is 0)"));
}

TEST(SafetensorsErrors, HeaderText) {
  EXPECT_THAT(header_error(" {}"), HasSubstr("the header must start with '{', it starts with ' {}'"));
  EXPECT_THAT(header_error("[]"), HasSubstr("the header must start with '{'"));
  EXPECT_THAT(header_error("{\"a\xFF\":1}"), HasSubstr("header byte 3 is 0xFF, which breaks UTF-8"));
  EXPECT_THAT(header_error("{\"\xC0\xAF\":1}"), HasSubstr("header byte 2 is 0xC0, which breaks UTF-8"));
  EXPECT_THAT(header_error("{\"\xED\xA0\x80\":1}"), HasSubstr("header byte 2 is 0xED"));
  EXPECT_THAT(header_error("{\"\xF4\x90\x80\x80\":1}"), HasSubstr("header byte 2 is 0xF4"));
  EXPECT_THAT(header_error(std::string("{}\0 junk", 8)),
              HasSubstr("header byte 2 is NUL, which JSON does not allow"));
  for (const std::string bad : {"{\"a\":", "{\"a\":{}},", "{} x", "{'a': 1}", "{\"a\":{},}",
                                "{\"a\":tru}", "{\"a\":\"\\uD800\"}", "{\"a\":\"tab\t\"}"})
    EXPECT_THAT(header_error(bad), HasSubstrs({"the header is not valid JSON: parse error at line 1"}))
        << bad;
  EXPECT_THAT(header_error("{\"a\":{\"shape\":[[1]]}}"),
              HasSubstr("the entry 'a' nests deeper than a safetensors header"));
  EXPECT_THAT(header_error("{\"__metadata__\":{\"k\":{\"x\":[]}}}"),
              HasSubstr("the entry '__metadata__' nests deeper"));
  EXPECT_THAT(header_error(std::string(50000, '[')), HasSubstr("the header must start with '{'"));
  EXPECT_THAT(header_error("{\"a\":" + std::string(50000, '[')), HasSubstr("nests deeper"));
}

TEST(SafetensorsErrors, DuplicateKeys) {
  const std::string a = entry("a", "F32", {0}, 0, 0);
  EXPECT_THAT(header_error("{" + a + "," + a + "}"), HasSubstr("the tensor name 'a' appears twice"));
  EXPECT_THAT(header_error("{\"__metadata__\":{},\"__metadata__\":{}}"),
              HasSubstr("the key '__metadata__' appears twice"));
  EXPECT_THAT(header_error("{\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"}}"),
              HasSubstr("__metadata__: the key 'k' appears twice"));
  EXPECT_THAT(header_error("{\"a\":{\"dtype\":\"F32\",\"dtype\":\"F64\"}}"),
              HasSubstr("tensor 'a': the key 'dtype' appears twice"));
}

TEST(SafetensorsErrors, MalformedEntries) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"\"w\":3", "tensor 'w': expected an object with dtype, shape and data_offsets, got 3"},
      {"\"w\":{\"shape\":[1],\"data_offsets\":[0,4]}", "tensor 'w': the key 'dtype' is missing"},
      {"\"w\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}", "tensor 'w': the key 'shape' is missing"},
      {"\"w\":{\"dtype\":\"F32\",\"shape\":[1]}", "tensor 'w': the key 'data_offsets' is missing"},
      {"\"w\":{\"dtype\":32,\"shape\":[1],\"data_offsets\":[0,4]}",
       "tensor 'w': 'dtype' must be a string such as \"F32\", got 32"},
      {"\"w\":{\"dtype\":\"F33\",\"shape\":[1],\"data_offsets\":[0,4]}",
       "tensor 'w': unknown dtype 'F33'; supported: BOOL, U8, I8, U16, I16, U32, I32, U64, I64, "
       "F16, BF16, F32, F64"},
      {"\"w\":{\"dtype\":\"F8_E4M3\",\"shape\":[4],\"data_offsets\":[0,4]}",
       "tensor 'w': dtype F8_E4M3 (8-bit floats) is not converted to float32; supported: BOOL"},
      {"\"w\":{\"dtype\":\"C64\",\"shape\":[1],\"data_offsets\":[0,8]}",
       "dtype C64 (complex numbers) is not converted"},
      {"\"w\":{\"dtype\":\"F32\",\"shape\":3,\"data_offsets\":[0,12]}",
       "tensor 'w': 'shape' must be an array of sizes (integers from 0 to 2^63 - 1), got 3"},
      {"\"w\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}", "got [-1]"},
      {"\"w\":{\"dtype\":\"F32\",\"shape\":[1.0],\"data_offsets\":[0,4]}", "got [1.0]"},
      {"\"w\":{\"dtype\":\"F32\",\"shape\":[\"1\"],\"data_offsets\":[0,4]}", "got [\"1\"]"},
      {"\"w\":{\"dtype\":\"F32\",\"shape\":[9223372036854775808],\"data_offsets\":[0,4]}",
       "got [9223372036854775808]"},
      {"\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,8]}",
       "tensor 'w': 'data_offsets' must be [begin, end], two integers from 0 to 2^64 - 1, got [0,4,8]"},
      {"\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]}", "got [-4,0]"},
      {"\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,18446744073709551616]}",
       "got [0,1.8446744073709552e+19]"},
      {"\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":{\"0\":4}}", "got {\"0\":4}"},
      {"\"__metadata__\":[\"a\"]", "__metadata__ must be an object of strings, got [\"a\"]"},
      {"\"__metadata__\":{\"version\":2}", "__metadata__: the value of 'version' must be a string, got 2"},
  };
  for (const auto& [body, message] : cases)
    EXPECT_THAT(header_error("{" + body + "}", Bytes(4, 0)),
                HasSubstrs({"[parse_safetensors] test.safetensors: ", message}))
        << body;
  // "-0" is zero, as the reference reads it.
  EXPECT_NO_THROW(parse(file("{\"w\":{\"dtype\":\"F32\",\"shape\":[-0],\"data_offsets\":[0,-0]}}")));
}

TEST(SafetensorsErrors, SizesThatOverflow) {
  EXPECT_THAT(header_error("{" + entry("w", "F32", {4294967296, 4294967296}, 0, 0) + "}"),
              HasSubstr("tensor 'w': shape (4294967296, 4294967296) has more elements than "
                        "int64 can count"));
  EXPECT_THAT(header_error("{" + entry("w", "F64", {4611686018427387904}, 0, 0) + "}"),
              HasSubstr("tensor 'w': shape (4611686018427387904) of F64 needs more bytes than "
                        "64 bits can count"));
  // A zero anywhere makes the count 0, whatever the other sizes.
  EXPECT_EQ(parse(file("{" + entry("w", "F64", {9223372036854775807, 0, 9223372036854775807}, 0, 0) +
                       "}"))
                .at("w")
                .numel(),
            0);
  // A huge shape with offsets that claim its bytes: refused by the data's size, before
  // anything is allocated.
  EXPECT_THAT(header_error("{" + entry("w", "U8", {1ll << 40}, 0, 1ull << 40) + "}", Bytes(8, 0)),
              HasSubstr("tensor 'w': data_offsets [0, 1099511627776] go beyond the 8 bytes of "
                        "data after the header (is the file truncated?)"));
}

TEST(SafetensorsErrors, OffsetsAndCoverage) {
  const Bytes twelve(12, 0);
  EXPECT_THAT(header_error("{" + entry("w", "F32", {1}, 8, 4) + "}", twelve),
              HasSubstr("tensor 'w': data_offsets [8, 4] end before they begin"));
  EXPECT_THAT(header_error("{" + entry("w", "F32", {2, 2}, 0, 12) + "}", twelve),
              HasSubstr("tensor 'w': data_offsets [0, 12] hold 12 bytes, shape (2, 2) of F32 needs 16"));
  EXPECT_THAT(header_error("{" + entry("w", "F32", {4}, 0, 16) + "}", twelve),
              HasSubstr("tensor 'w': data_offsets [0, 16] go beyond the 12 bytes of data"));
  EXPECT_THAT(header_error("{" + entry("a", "F32", {1}, 0, 4) + "," + entry("b", "F32", {1}, 8, 12) +
                           "}",
                           twelve),
              HasSubstr("bytes [4, 8) of the data belong to no tensor (a hole before tensor 'b')"));
  EXPECT_THAT(header_error("{" + entry("a", "F32", {2}, 4, 12) + "}", twelve),
              HasSubstr("bytes [0, 4) of the data belong to no tensor (a hole before tensor 'a')"));
  EXPECT_THAT(header_error("{" + entry("b", "F32", {2}, 4, 12) + "," + entry("a", "F32", {2}, 0, 8) +
                           "}",
                           twelve),
              HasSubstr("tensor 'b' at bytes [4, 12) overlaps tensor 'a' at [0, 8)"));
  EXPECT_THAT(header_error("{" + entry("a", "F32", {2}, 0, 8) + "," + entry("b", "F32", {2}, 0, 8) +
                           "}",
                           Bytes(8, 0)),
              HasSubstr("tensor 'b' at bytes [0, 8) overlaps tensor 'a' at [0, 8)"));
  EXPECT_THAT(header_error("{" + entry("a", "F32", {2}, 0, 8) + "}", twelve),
              HasSubstr("the data after the header has 12 bytes, the tensors cover 8: bytes "
                        "[8, 12) belong to no tensor"));
  EXPECT_THAT(header_error("{}", Bytes(1, 0)),
              HasSubstr("the data after the header has 1 bytes, the tensors cover 0"));
}

// ---- mutations -----------------------------------------------------------------------------

using attn::test::Outcome;
using attn::test::problem_of;

// load_safetensors maps the file, parse_safetensors has the bytes: the two must agree
// on every input, value for value, error for error.
void expect_file_reads_alike(const Bytes& bytes, const SafetensorsFile* parsed,
                             const std::string& parse_problem, const std::string& what) {
  const fs::path path = test_dir() / "mutant.safetensors";
  std::ofstream(path, std::ios::binary | std::ios::trunc)
      .write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  try {
    const SafetensorsFile f = load_safetensors(path.string());
    ASSERT_NE(parsed, nullptr) << what << ": load accepts what parse refuses: " << parse_problem;
    ASSERT_EQ(f.tensors.size(), parsed->tensors.size()) << what;
    for (std::size_t i = 0; i < f.tensors.size(); ++i) {
      EXPECT_EQ(f.tensors[i].first, parsed->tensors[i].first) << what;
      const std::vector<float> a = f.tensors[i].second.to_vector();
      const std::vector<float> b = parsed->tensors[i].second.to_vector();
      ASSERT_EQ(a.size(), b.size()) << what;
      EXPECT_EQ(0, a.empty() ? 0 : std::memcmp(a.data(), b.data(), a.size() * sizeof(float))) << what;
    }
  } catch (const attn::Error& e) {
    ASSERT_EQ(parsed, nullptr) << what << ": load refuses what parse accepts: " << e.what();
    EXPECT_EQ(problem_of(e.what(), "[load_safetensors] " + path.string() + ": "), parse_problem) << what;
  }
}

// Anything but tensors consistent with their shapes that survive a round trip
// through the writer, or an attn::Error naming the function and source, fails the
// test.
Outcome parse_mutant(const Bytes& bytes, const std::string& what) {
  return attn::test::parse_mutant(
      bytes, what, "[parse_safetensors] mutant.safetensors: ",
      [](std::span<const std::uint8_t> b) { return parse_safetensors(b, "mutant.safetensors"); },
      [&](const SafetensorsFile& f) {
        const SafetensorsFile back = parse_safetensors(serialize_safetensors(f.tensors, f.metadata), "back");
        EXPECT_EQ(back.metadata, f.metadata) << what;
        for (const auto& [name, t] : f.tensors) {
          EXPECT_EQ(t.strides(), attn::contiguous_strides(t.shape())) << what;
          const std::vector<float> values = t.to_vector();
          EXPECT_EQ(static_cast<std::int64_t>(values.size()), t.numel()) << what;
          const Tensor* again = back.find(name);
          if (again == nullptr || again->shape() != t.shape()) {
            ADD_FAILURE() << what << ": tensor '" << name << "' lost in the round trip";
            continue;
          }
          const std::vector<float> round = again->to_vector();
          EXPECT_EQ(0, values.empty() ? 0 : std::memcmp(values.data(), round.data(), values.size() * 4))
              << what;
        }
        expect_file_reads_alike(bytes, &f, "", what);
      },
      [&](const std::string& problem) { expect_file_reads_alike(bytes, nullptr, problem, what); });
}

std::vector<Bytes> seeds() {
  return {
      file_of({{"w", "F32", {2, 3}, encode<float>({1, 2, 3, 4, 5, 6})},
               {"b", "BF16", {2}, encode<std::uint16_t>({0x3F80, 0xC000})}},
              "\"__metadata__\":{\"format\":\"pt\"}"),
      file_of({{"h", "F16", {2, 1, 2}, encode<std::uint16_t>({0x3C00, 0x0001, 0x7C00, 0x7E00})},
               {"i", "I64", {3}, encode<std::int64_t>({-1, 0, INT64_MAX})},
               {"m", "BOOL", {}, {1}}}),
      file_of({{"z", "U8", {0, 5}, {}}, {"d", "F64", {1}, encode<double>({0.5})}}),
      serialize_safetensors({{"x", Tensor::from({2}, {1, 2})}}, {{"k", "v"}}),
  };
}

TEST(SafetensorsMutations, EveryTruncationIsRefused) {
  // The tensors must cover the data exactly, so every proper prefix of a valid file
  // is an error, and the whole file is not.
  for (const Bytes& seed : seeds()) {
    for (std::size_t len = 0; len < seed.size(); ++len) {
      const Bytes prefix(seed.begin(), seed.begin() + static_cast<std::ptrdiff_t>(len));
      EXPECT_EQ(parse_mutant(prefix, "prefix of " + std::to_string(len) + " bytes"), Outcome::refused);
    }
    EXPECT_EQ(parse_mutant(seed, "the seed"), Outcome::parsed);
  }
}

TEST(SafetensorsMutations, MutantsParseOrThrowAttnError) {
  std::mt19937_64 rng(20261101);
  auto below = [&rng](std::size_t n) { return static_cast<std::size_t>(rng() % n); };
  // Fragments that steer mutants into the parser's corners.
  const std::vector<std::string> tokens = {
      "{", "}", "[", "]", ",", ":", "\"", " ", "\n", "\\", "\\u0000", "\\uD800", "null", "true",
      "-", "-0", "0", "1", "1.5", "1e3", "\"dtype\"", "\"shape\"", "\"data_offsets\"",
      "\"__metadata__\"", "\"F32\"", "\"F16\"", "\"BF16\"", "\"BOOL\"", "\"I64\"", "\"F8_E4M3\"",
      "[0,0]", "[]", "[[]]", "9223372036854775807", "18446744073709551615",
      "18446744073709551616", "4294967296", "\xC3\xA9", "\xFF", "\xED\xA0\x80", std::string(1, '\0')};
  const std::vector<std::string> huge = {"9223372036854775807", "4611686018427387904",
                                         "4294967296", "18446744073709551615", "0"};

  int parsed = 0, refused = 0, total = 0;
  const std::vector<Bytes> all = seeds();
  for (int round = 0; round < 3000; ++round) {
    Bytes m = all[below(all.size())];
    const std::size_t header_end = std::min<std::size_t>(m.size(), 8 + header_of(m).size());
    const int kind = static_cast<int>(below(5));
    if (kind == 0) {  // a few random bytes anywhere
      for (std::size_t k = 1 + below(4); k > 0; --k) m[below(m.size())] = static_cast<std::uint8_t>(rng());
    } else if (kind == 1) {  // a bit flip in the length or the header
      const std::size_t at = below(header_end);
      m[at] = static_cast<std::uint8_t>(m[at] ^ (1u << below(8)));
    } else if (kind == 2) {  // a header span replaced by a token, the length kept right
      const std::string& t = tokens[below(tokens.size())];
      const std::size_t at = 8 + below(header_end - 8), len = std::min(below(6), header_end - at);
      m.erase(m.begin() + static_cast<std::ptrdiff_t>(at), m.begin() + static_cast<std::ptrdiff_t>(at + len));
      m.insert(m.begin() + static_cast<std::ptrdiff_t>(at), t.begin(), t.end());
      const std::uint64_t n = header_end - 8 - len + t.size();
      for (int i = 0; i < 8; ++i) m[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(n >> (8 * i));
    } else if (kind == 3) {  // a huge shape, with offsets to match or not
      const std::string dims = "[" + huge[below(huge.size())] + "," + huge[below(huge.size())] + "]";
      const std::string end = below(2) == 0 ? "0" : huge[below(huge.size())];
      m = file("{\"w\":{\"dtype\":\"F32\",\"shape\":" + dims + ",\"data_offsets\":[0," + end + "]}}",
               Bytes(below(64), 0x41));
    } else {  // a random header length
      for (int i = 0; i < 8; ++i)
        m[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(below(2) == 0 ? rng() : (i == 0 ? below(256) : 0));
    }
    ++total;
    const std::string what = "round " + std::to_string(round) + " (mutation " + std::to_string(kind) + ")";
    const Outcome outcome = parse_mutant(m, what);
    if (outcome == Outcome::failed) return;  // the first failure says enough
    (outcome == Outcome::parsed ? parsed : refused) += 1;
  }
  // Both outcomes occur: the mutants reach past the header into the data.
  EXPECT_GT(parsed, 50) << total;
  EXPECT_GT(refused, 1000) << total;
}

}  // namespace
