// attn::io .npy files: valid files built byte by byte for every version, dtype and
// order with known values; every error with its message; the writer's bytes
// against numpy's; and a seeded mutation test that only ever gets a tensor or an
// attn::Error back (run under ASan, it also shows that nothing reads out of bounds).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

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
#include <vector>

#include "attn/io.hpp"
#include "attn/tensor.hpp"
#include "mutation_harness.hpp"
#include "test_util.hpp"

using attn::Shape;
using attn::Tensor;
using attn::io::parse_npy;
using attn::io::read_npy;
using attn::io::serialize_npy;
using attn::io::write_npy;
using attn::test::error_of;
using attn::test::HasSubstrs;
using attn::test::kInf;
using attn::test::read_file;
using attn::test::test_dir;
using ::testing::HasSubstr;

namespace fs = std::filesystem;

namespace {

using Bytes = std::vector<std::uint8_t>;

// ---- building files ---------------------------------------------------------------------

// The header dict as numpy writes it, unpadded.
std::string dict(const std::string& descr, const std::string& shape, bool fortran = false) {
  return "{'descr': '" + descr + "', 'fortran_order': " + (fortran ? "True" : "False") +
         ", 'shape': " + shape + ", }";
}

// The shape (n,), as a Python tuple.
std::string tuple1(std::size_t n) {
  std::string s = "(";
  s += std::to_string(n);  // appended, not "(" + ...: GCC 12 warns falsely (-Wrestrict)
  return s + ",)";
}

// A .npy file: magic, version major.minor, the header length (2 bytes little-endian
// for 1.x, else 4), `header` followed by '\n' (unaligned: the reader must not care),
// then `data`.
Bytes npy(int major, const std::string& header, const Bytes& data = {}, int minor = 0) {
  Bytes out = {0x93, 'N', 'U', 'M', 'P', 'Y', static_cast<std::uint8_t>(major),
               static_cast<std::uint8_t>(minor)};
  const std::size_t length = header.size() + 1;
  for (int i = 0; i < (major == 1 ? 2 : 4); ++i)
    out.push_back(static_cast<std::uint8_t>(length >> (8 * i)));
  out.insert(out.end(), header.begin(), header.end());
  out.push_back('\n');
  out.insert(out.end(), data.begin(), data.end());
  return out;
}

// The bytes of `values` as T, little- or big-endian.
template <class T>
Bytes encode(const std::vector<T>& values, bool big_endian = false) {
  Bytes out;
  for (T v : values) {
    std::uint8_t b[sizeof(T)];
    std::memcpy(b, &v, sizeof(T));
    const bool swap = big_endian != (std::endian::native == std::endian::big);
    for (std::size_t i = 0; i < sizeof(T); ++i) out.push_back(b[swap ? sizeof(T) - 1 - i : i]);
  }
  return out;
}

Tensor parse(const Bytes& bytes) { return parse_npy(bytes, "test.npy"); }
std::string parse_error(const Bytes& bytes) {
  return error_of([&] { parse(bytes); });
}

// Elements equal bit for bit (so -0.0 differs from 0.0, and NaN equals a NaN).
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

// Dense row-major, as every tensor the reader returns.
void expect_dense(const Tensor& t, const Shape& shape) {
  EXPECT_EQ(t.shape(), shape);
  EXPECT_EQ(t.strides(), attn::contiguous_strides(shape));
}

// ---- valid files ----------------------------------------------------------------------------

TEST(NpyRead, EveryFormatVersion) {
  const std::vector<float> values = {0.5f, -1.0f, 2.0f, 3.25f, 1e-3f, -kInf};
  for (int major : {1, 2, 3}) {
    const Tensor t = parse(npy(major, dict("<f4", "(2, 3)"), encode(values)));
    expect_dense(t, {2, 3});
    expect_bits(t, values, "version " + std::to_string(major));
  }
}

struct DtypeCase {
  std::string descr;
  Bytes data;
  std::vector<float> want;
};

// Each dtype in both byte orders (one-byte ones with '|'), with values at its edges.
std::vector<DtypeCase> dtype_cases() {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  std::vector<DtypeCase> cases;
  for (bool big : {false, true}) {
    const std::string o = big ? ">" : "<";
    cases.push_back({o + "f4", encode<float>({1.5f, -0.0f, kInf, 3.4028235e38f, 1e-45f, nan}, big),
                     {1.5f, -0.0f, kInf, 3.4028235e38f, 1e-45f, nan}});
    // Rounded to nearest float; out of range becomes infinity, tiny becomes zero.
    cases.push_back({o + "f8", encode<double>({0.1, -2.5, 1e300, -1e300, 1e-310, -0.0}, big),
                     {0.1f, -2.5f, kInf, -kInf, 0.0f, -0.0f}});
    // Halves by their bits: 1, -2, the largest, the smallest subnormal, the largest
    // subnormal, the smallest normal, +-inf, -0, NaN, 1/3 rounded.
    cases.push_back(
        {o + "f2",
         encode<std::uint16_t>({0x3C00, 0xC000, 0x7BFF, 0x0001, 0x03FF, 0x0400, 0x7C00, 0xFC00,
                                0x8000, 0x7E00, 0x3555},
                               big),
         {1.0f, -2.0f, 65504.0f, 0x1p-24f, 0x3FFp-24f, 0x1p-14f, kInf, -kInf, -0.0f, nan,
          0x555p-12f}});
    cases.push_back({o + "i2", encode<std::int16_t>({-32768, 32767, -2}, big), {-32768, 32767, -2}});
    cases.push_back({o + "u2", encode<std::uint16_t>({65535, 1, 0}, big), {65535, 1, 0}});
    // 2^24 + 1 is the first integer a float cannot hold: it rounds to even.
    cases.push_back({o + "i4", encode<std::int32_t>({INT32_MIN, 16777217, 7}, big),
                     {-2147483648.0f, 16777216.0f, 7}});
    cases.push_back({o + "u4", encode<std::uint32_t>({4294967295u, 3}, big), {4294967296.0f, 3}});
    cases.push_back({o + "i8", encode<std::int64_t>({INT64_MIN, 9007199254740993LL, -5}, big),
                     {-0x1p63f, 9007199254740992.0f, -5}});
    cases.push_back({o + "u8", encode<std::uint64_t>({UINT64_MAX, 3}, big), {0x1p64f, 3}});
    cases.push_back({o + "i1", encode<std::int8_t>({-128, 127}), {-128, 127}});
    cases.push_back({o + "u1", encode<std::uint8_t>({255, 0}), {255, 0}});
  }
  cases.push_back({"|b1", {0, 1, 0, 1}, {0, 1, 0, 1}});
  cases.push_back({"|i1", encode<std::int8_t>({-128, 127, -1}), {-128, 127, -1}});
  cases.push_back({"|u1", encode<std::uint8_t>({255, 0, 1}), {255, 0, 1}});
  return cases;
}

TEST(NpyRead, EveryDtypeConvertsToFloat) {
  for (const DtypeCase& c : dtype_cases()) {
    const std::int64_t n = static_cast<std::int64_t>(c.want.size());
    for (int major : {1, 2, 3}) {
      const Tensor t =
          parse(npy(major, dict(c.descr, tuple1(static_cast<std::size_t>(n))), c.data));
      expect_dense(t, {n});
      expect_bits(t, c.want, c.descr + " version " + std::to_string(major));
    }
  }
}

TEST(NpyRead, HalfSubnormalsAreExact) {
  // Every subnormal half is m * 2^-24 for its 10-bit mantissa m, with either sign.
  std::vector<std::uint16_t> bits;
  std::vector<float> want;
  for (std::uint16_t m = 0; m < 0x400; ++m) {
    bits.push_back(m);
    want.push_back(std::ldexp(static_cast<float>(m), -24));
    bits.push_back(static_cast<std::uint16_t>(0x8000 | m));
    want.push_back(-std::ldexp(static_cast<float>(m), -24));
  }
  const Tensor t = parse(npy(1, dict("<f2", tuple1(bits.size())),
                             encode(bits)));
  expect_bits(t, want, "subnormal halves");
}

TEST(NpyRead, FortranOrderBecomesRowMajor) {
  // (2, 3) stored column by column: a00 a10 a01 a11 a02 a12.
  const Tensor m = parse(npy(1, dict("<f4", "(2, 3)", true), encode<float>({0, 10, 1, 11, 2, 12})));
  expect_dense(m, {2, 3});
  expect_bits(m, {0, 1, 2, 10, 11, 12}, "(2, 3) Fortran");

  // (2, 3, 4): element (i, j, k) = 100 i + 10 j + k sits at i + 2 j + 6 k.
  std::vector<std::int16_t> column_major(24);
  std::vector<float> row_major;
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 3; ++j)
      for (int k = 0; k < 4; ++k) {
        column_major[static_cast<std::size_t>(i + 2 * j + 6 * k)] =
            static_cast<std::int16_t>(100 * i + 10 * j + k);
        row_major.push_back(static_cast<float>(100 * i + 10 * j + k));
      }
  for (int major : {1, 2, 3}) {
    const Tensor t = parse(npy(major, dict(">i2", "(2, 3, 4)", true), encode(column_major, true)));
    expect_dense(t, {2, 3, 4});
    expect_bits(t, row_major, "(2, 3, 4) Fortran, version " + std::to_string(major));
  }
  // Size-1 dims and 1-d arrays read the same in either order.
  const Tensor c = parse(npy(1, dict("<f4", "(1, 3, 1)", true), encode<float>({1, 2, 3})));
  expect_dense(c, {1, 3, 1});
  expect_bits(c, {1, 2, 3}, "(1, 3, 1) Fortran");
}

TEST(NpyRead, ZeroDimAndZeroSizeArrays) {
  for (bool fortran : {false, true}) {
    const Tensor scalar = parse(npy(1, dict("<f8", "()", fortran), encode<double>({-7.25})));
    expect_dense(scalar, {});
    EXPECT_EQ(scalar.numel(), 1);
    expect_bits(scalar, {-7.25f}, "0-d");

    for (const auto& [text, shape] : std::vector<std::pair<std::string, Shape>>{
             {"(0,)", {0}}, {"(2, 0, 3)", {2, 0, 3}}, {"(0, 0)", {0, 0}},
             // Sizes whose product overflows int64, but one is 0: nothing to read.
             {"(0, 4611686018427387904, 4611686018427387904)", {0, 1LL << 62, 1LL << 62}}}) {
      const Tensor t = parse(npy(3, dict("<f4", text, fortran)));
      EXPECT_EQ(t.shape(), shape) << text;
      EXPECT_EQ(t.numel(), 0) << text;
    }
  }
}

TEST(NpyRead, HeaderSpellingsNumpyAccepts) {
  const Bytes data = encode<float>({1, 2});
  for (const std::string& header : {
           // Keys in any order, double quotes, no trailing comma, no padding.
           std::string("{'shape': (2,), 'descr': '<f4', 'fortran_order': False}"),
           std::string("{\"descr\": \"<f4\", \"fortran_order\": False, \"shape\": (2,)}"),
           // Whitespace of every kind between tokens, around the dict, none at all.
           std::string(" \t{ 'descr' :'<f4' ,\n'fortran_order':False,'shape':( 2 , ) , } \r\n  "),
           std::string("{'descr':'<f4','fortran_order':False,'shape':(2,)}"),
           // numpy's padding: spaces up to a multiple of 64 bytes.
           dict("<f4", "(2,)") + std::string(60, ' '),
           // Python 2 wrote long integers with an 'L'; numpy reads them before 3.0.
           dict("<f4", "(2L,)"),
       }) {
    const Tensor t = parse(npy(1, header, data));
    EXPECT_EQ(t.shape(), Shape{2}) << header;
    expect_bits(t, {1, 2}, header);
  }
  // A trailing comma inside the shape tuple.
  EXPECT_EQ(parse(npy(1, dict("<f4", "(1, 2,)"), data)).shape(), (Shape{1, 2}));
}

TEST(NpyRead, ReadsFilesFromDisk) {
  const fs::path path = test_dir() / "w.npy";
  const Bytes bytes = npy(1, dict("<f4", "(2, 2)"), encode<float>({1, 2, 3, 4}));
  std::ofstream(path, std::ios::binary)
      .write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  const Tensor t = read_npy(path.string());
  expect_dense(t, {2, 2});
  expect_bits(t, {1, 2, 3, 4}, path.string());
}

// ---- writing ----------------------------------------------------------------------------

std::string as_string(const Bytes& bytes) { return {bytes.begin(), bytes.end()}; }

TEST(NpyWrite, BytesAreNumpys) {
  // np.save of np.array([[1, 2, 3], [4, 5, 6]], np.float32), byte for byte: numpy
  // 1.24 pads the header (and 20 spaces of room for the first axis) to 128 bytes.
  const Bytes bytes = serialize_npy(Tensor::from({2, 3}, {1, 2, 3, 4, 5, 6}));
  const std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
  std::string want = std::string("\x93NUMPY\x01\x00\x76\x00", 10) + header;
  want += std::string(127 - want.size(), ' ') + "\n";
  want += as_string(encode<float>({1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(as_string(bytes), want);

  // numpy's header lengths (np.save of np.zeros((1,) * rank, np.float32)): the
  // growth room pushes rank 15 over 128 bytes.
  for (const auto& [rank, length] : std::vector<std::pair<int, int>>{
           {0, 118}, {1, 118}, {14, 118}, {15, 182}, {21, 182}}) {
    const Bytes b = serialize_npy(Tensor::zeros(Shape(static_cast<std::size_t>(rank), 1)));
    EXPECT_EQ(b[8] | b[9] << 8, length) << "rank " << rank;
  }
  // 1-d shapes are Python tuples with a comma.
  EXPECT_THAT(as_string(serialize_npy(Tensor::zeros({5}))), HasSubstr("'shape': (5,), }"));
}

TEST(NpyWrite, RoundTripsThroughAFile) {
  const fs::path path = test_dir() / "round.npy";
  const Tensor x = attn::test::randn({3, 4, 5}, 7);
  write_npy(path.string(), x);
  const Tensor y = read_npy(path.string());
  expect_dense(y, {3, 4, 5});
  expect_bits(y, x.to_vector(), "round trip");
  // The data starts at a multiple of 64 bytes, as numpy aligns it.
  EXPECT_EQ(read_file(path).size() - 3 * 4 * 5 * sizeof(float), 128u);

  for (const Tensor& t : {Tensor::full({}, 2.5f), Tensor::zeros({0, 3}),
                          Tensor::from({2}, {-kInf, std::numeric_limits<float>::quiet_NaN()})}) {
    const Tensor back = parse(serialize_npy(t));
    expect_dense(back, t.shape());
    expect_bits(back, t.to_vector(), "round trip " + t.shape_string());
  }
}

TEST(NpyWrite, StridedViewsInLogicalOrder) {
  const Tensor x = Tensor::from({2, 3}, {1, 2, 3, 4, 5, 6});
  // A transpose, a slice and a broadcast: each written as its own row-major values.
  for (const Tensor& view : {x.transpose(0, 1), x.slice(1, 1, 3), x.slice(0, 1, 2).expand({3, 3})}) {
    const Tensor back = parse(serialize_npy(view));
    expect_dense(back, view.shape());
    expect_bits(back, view.to_vector(), "view " + view.shape_string());
  }
}

TEST(NpyWrite, HugeRankFallsBackToVersion2) {
  // 22000 dims of size 1 spell a header longer than version 1.0's 65535 bytes.
  const Tensor t = Tensor::zeros(Shape(22000, 1));
  const Bytes bytes = serialize_npy(t);
  EXPECT_EQ(bytes[6], 2);
  EXPECT_EQ(parse(bytes).rank(), 22000);
  EXPECT_EQ(serialize_npy(Tensor::zeros(Shape(2000, 1)))[6], 1);
}

TEST(NpyWrite, Errors) {
  EXPECT_THAT(error_of([] { serialize_npy(Tensor()); }),
              HasSubstrs({"[serialize_npy]", "undefined"}));
  const std::string path = (test_dir() / "no-such-folder" / "w.npy").string();
  EXPECT_THAT(error_of([&] { write_npy(path, Tensor::zeros({2})); }),
              HasSubstrs({"[write_npy] " + path, "cannot open the file for writing",
                          "No such file or directory"}));
}

// ---- errors ------------------------------------------------------------------------------

TEST(NpyErrors, FilesThatCannotBeRead) {
  const fs::path dir = test_dir();
  const std::string missing = (dir / "missing.npy").string();
  EXPECT_THAT(error_of([&] { read_npy(missing); }),
              HasSubstrs({"[read_npy] " + missing + ": cannot open the file",
                          "No such file or directory"}));
  EXPECT_THAT(error_of([&] { read_npy(dir.string()); }),
              HasSubstrs({"[read_npy] " + dir.string(), "Is a directory"}));
  const fs::path empty = dir / "empty.npy";
  std::ofstream(empty).close();
  EXPECT_THAT(error_of([&] { read_npy(empty.string()); }),
              HasSubstrs({"[read_npy] " + empty.string(), "not a .npy file: the file is empty"}));
}

TEST(NpyErrors, Preamble) {
  EXPECT_THAT(parse_error({'P', 'K', 3, 4, 0, 0, 0, 0, 0, 0, 0, 0}),
              HasSubstrs({"[parse_npy] test.npy: not a .npy file", "starts with 'PK\\x03\\x04"}));
  EXPECT_THAT(parse_error({'{'}), HasSubstr("not a .npy file: it starts with '{'"));
  EXPECT_THAT(parse_error({0x93, 'N', 'U', 'M'}),
              HasSubstr("the file ends after 4 bytes, inside the 8-byte magic and version"));
  const Bytes good = npy(1, dict("<f4", "(1,)"), encode<float>({1}));
  for (const auto& [major, minor] : std::vector<std::pair<int, int>>{{0, 0}, {4, 0}, {1, 1}, {2, 5}}) {
    Bytes b = good;
    b[6] = static_cast<std::uint8_t>(major);
    b[7] = static_cast<std::uint8_t>(minor);
    EXPECT_THAT(parse_error(b), HasSubstrs({"unsupported .npy format version " +
                                                std::to_string(major) + "." + std::to_string(minor),
                                            "1.0, 2.0 and 3.0"}));
  }
  EXPECT_THAT(parse_error(Bytes(good.begin(), good.begin() + 9)),
              HasSubstr("ends after 9 bytes, inside the 10-byte preamble of a version 1.0 file"));
  const Bytes v2 = npy(2, dict("<f4", "(1,)"), encode<float>({1}));
  EXPECT_THAT(parse_error(Bytes(v2.begin(), v2.begin() + 11)),
              HasSubstr("ends after 11 bytes, inside the 12-byte preamble of a version 2.0 file"));
}

TEST(NpyErrors, HeaderLengthBeyondTheFile) {
  Bytes b = npy(1, dict("<f4", "(1,)"), encode<float>({1}));
  const std::size_t after_preamble = b.size() - 10;
  b[8] = 0xF4;  // 500
  b[9] = 0x01;
  EXPECT_THAT(parse_error(b), HasSubstr("header length 500 goes beyond the end of the file: " +
                                        std::to_string(after_preamble) +
                                        " bytes follow the 10-byte preamble"));
  Bytes v3 = npy(3, dict("<f4", "(1,)"), encode<float>({1}));
  v3[11] = 0xFF;  // 4 GiB and more
  EXPECT_THAT(parse_error(v3), HasSubstr("goes beyond the end of the file"));
}

TEST(NpyErrors, MalformedHeaders) {
  const std::string f = "'fortran_order': False";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", "expected the header dict to open"},
      {"[]", "expected the header dict to open"},
      {"{'descr': '<f4', " + f + "}", "the key 'shape' is missing"},
      {"{}", "the key 'descr' is missing"},
      {"{'descr': '<f4', 'descr': '<f4', " + f + ", 'shape': (1,)}", "duplicate key 'descr'"},
      {"{'descr': '<f4', " + f + ", 'shape': (1,), 'extra': 1}", "unknown key 'extra'"},
      {"{descr: '<f4', " + f + ", 'shape': (1,)}", "expected a key in quotes"},
      {"{,}", "expected a key in quotes"},
      {"{'descr': '<f4',, " + f + ", 'shape': (1,)}", "expected a key in quotes"},
      {"{'descr' '<f4', " + f + ", 'shape': (1,)}", "expected ':' after the key 'descr'"},
      {"{'descr': '<f4' " + f + ", 'shape': (1,)}", "expected ',' or '}' after a value"},
      {"{'descr': '<f4', " + f + ", 'shape': (1,)", "expected ',' or '}' after a value"},
      {"{'descr': '<f4', " + f + ", 'shape': (1,)}}", "unexpected text after the header dict"},
      {"{'descr': '<f4', " + f + ", 'shape': (1,)} # note", "unexpected text after the header"},
      {"{'descr': '<f4', 'fortran_order': 0, 'shape': (1,)}", "must be True or False"},
      {"{'descr': '<f4', 'fortran_order': false, 'shape': (1,)}", "must be True or False"},
      {"{'descr': '<f4', 'fortran_order': Trueish, 'shape': (1,)}", "must be True or False"},
      {"{'descr': <f4, " + f + ", 'shape': (1,)}", "expected the dtype ('descr') as a quoted"},
      {"{'descr': '<f4\\x', " + f + ", 'shape': (1,)}", "escape sequences are not supported"},
      {"{'descr': '<f4\n', " + f + ", 'shape': (1,)}", "line break inside a string"},
      {"{'descr': '<f4', " + f + ", 'shape': [1]}", "expected the shape as a tuple"},
      {"{'descr': '<f4', " + f + ", 'shape': 1}", "expected the shape as a tuple"},
      {"{'descr': '<f4', " + f + ", 'shape': (1)}", "a 1-d shape is written (n,)"},
      {"{'descr': '<f4', " + f + ", 'shape': (-1,)}", "negative size -1 in the shape"},
      {"{'descr': '<f4', " + f + ", 'shape': (+1,)}", "expected a size"},
      {"{'descr': '<f4', " + f + ", 'shape': (1,,)}", "expected a size"},
      {"{'descr': '<f4', " + f + ", 'shape': (,)}", "expected a size"},
      {"{'descr': '<f4', " + f + ", 'shape': (1 1)}", "expected ',' or ')' in the shape"},
      {"{'descr': '<f4', " + f + ", 'shape': (1.0,)}", "expected ',' or ')' in the shape"},
      {"{'descr': '<f4', " + f + ", 'shape': (01,)}", "a size with a leading zero"},
      {"{'descr': '<f4', " + f + ", 'shape': (9223372036854775808,)}",
       "size 9223372036854775808 in the shape does not fit in int64"},
      {"{'descr': '<f4', " + f + ", 'shape': (1", "expected ',' or ')' in the shape"},
  };
  for (const auto& [header, problem] : cases) {
    EXPECT_THAT(parse_error(npy(1, header, encode<float>({1}))),
                HasSubstrs({"[parse_npy] test.npy: malformed header at byte", problem}))
        << header;
  }
  // A header that ends inside a string (npy() ends every header in '\n': drop it).
  Bytes unterminated = npy(1, "{'descr': '<f4");
  unterminated.pop_back();
  unterminated[8] = static_cast<std::uint8_t>(unterminated[8] - 1);
  EXPECT_THAT(parse_error(unterminated), HasSubstr("malformed header at byte 10: unterminated string"));
  // The message shows the header, with unprintable bytes escaped.
  EXPECT_THAT(parse_error(npy(1, "{\x01}")), HasSubstr("header: {\\x01}\\x0a"));
  // 9223372036854775807 is int64's largest: it parses, and the data check reports it.
  EXPECT_THAT(parse_error(npy(1, dict("|u1", "(9223372036854775807,)"))),
              HasSubstr("has 0 bytes of data, shape (9223372036854775807) of |u1 needs "
                        "9223372036854775807"));
  // Python 2's 'L' suffix belongs to versions 1.0 and 2.0 only.
  EXPECT_THAT(parse_error(npy(3, dict("<f4", "(1L,)"), encode<float>({1}))),
              HasSubstr("expected ',' or ')' in the shape"));
}

TEST(NpyErrors, NonAsciiHeaders) {
  // 'é' in UTF-8 is C3 A9: refused before version 3.0 as not ASCII, accepted as UTF-8
  // by 3.0, where the dtype it spells is then refused.
  const std::string header = dict("<f4\xC3\xA9", "(1,)");
  for (int major : {1, 2})
    EXPECT_THAT(parse_error(npy(major, header, encode<float>({1}))),
                HasSubstr("header byte 14 is 0xC3, not ASCII (only format version 3.0 allows "
                          "UTF-8 in the header)"));
  EXPECT_THAT(parse_error(npy(3, header, encode<float>({1}))),
              HasSubstr("unsupported dtype '<f4\\xc3\\xa9'"));
  // Broken UTF-8 in 3.0: a lone continuation byte, a truncated sequence, an overlong '/'.
  for (const std::string& bad : {std::string("\x80"), std::string("\xE2\x82"),
                                 std::string("\xC0\xAF")})
    EXPECT_THAT(parse_error(npy(3, dict("<f4" + bad, "(1,)"), encode<float>({1}))),
                HasSubstr("header byte 14 is 0x"))
        << "breaks UTF-8";
  EXPECT_THAT(parse_error(npy(3, dict("<f4\xED\xA0\x80", "(1,)"))),  // a surrogate
              HasSubstr("header byte 14 is 0xED, which breaks UTF-8"));
}

TEST(NpyErrors, UnsupportedDtypesAreNamed) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"<c8", "(complex numbers)"},
      {">c16", "(complex numbers)"},
      {"|O", "(Python objects)"},
      {"<U5", "(unicode strings)"},
      {"|S3", "(byte strings)"},
      {"|V4", "(raw bytes (void))"},
      {"<M8[ns]", "(datetimes)"},
      {"<m8[s]", "(timedeltas)"},
      {"<f16", "(floats of 16 bytes)"},
      {"<i3", "(signed integers of 3 bytes)"},
      {"<u16", "(unsigned integers of 16 bytes)"},
      {"<b2", "(bools of 2 bytes)"},
      {"<x4", "(an unknown type code)"},
      {"", "(no type code)"},
      {"|f4", "(byte order '|' is for one-byte types"},
      {"=f4", "(floats of 4 bytes; byte order '=' is the writer's native one"},
      {"f4", "(floats of 4 bytes; no byte order"},
  };
  for (const auto& [descr, what] : cases) {
    EXPECT_THAT(parse_error(npy(1, dict(descr, "(1,)"), encode<float>({1}))),
                HasSubstrs({"[parse_npy] test.npy: unsupported dtype '" + descr + "' " + what,
                            "supported: bool |b1; integers |i1 |u1 <i2 <u2 <i4 <u4 <i8 <u8; "
                            "floats <f2 <f4 <f8"}))
        << descr;
  }
  EXPECT_THAT(parse_error(npy(1, "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': ()}")),
              HasSubstr("unsupported dtype: a structured dtype"));
}

TEST(NpyErrors, ShapesThatOverflow) {
  EXPECT_THAT(parse_error(npy(1, dict("<f4", "(4294967296, 4294967296)"))),
              HasSubstr("shape (4294967296, 4294967296) has more elements than int64 can count"));
  // 2^62 elements fit int64, their 2^65 bytes do not fit size_t.
  EXPECT_THAT(parse_error(npy(1, dict("<f8", "(4611686018427387904,)"))),
              HasSubstr("shape (4611686018427387904) of <f8 needs more bytes than size_t can count"));
}

TEST(NpyErrors, DataOfTheWrongLength) {
  const Bytes six = encode<float>({1, 2, 3, 4, 5, 6});
  EXPECT_THAT(parse_error(npy(1, dict("<f4", "(2, 3)"), Bytes(six.begin(), six.end() - 4))),
              HasSubstr("[parse_npy] test.npy: has 20 bytes of data, shape (2, 3) of <f4 needs 24"));
  EXPECT_THAT(parse_error(npy(1, dict("<f8", "(2, 3)"), six)),
              HasSubstr("has 24 bytes of data, shape (2, 3) of <f8 needs 48"));
  Bytes longer = six;
  longer.push_back(0);
  EXPECT_THAT(parse_error(npy(2, dict("<f4", "(2, 3)"), longer)),
              HasSubstr("has 25 bytes of data, shape (2, 3) of <f4 needs 24: the bytes after the "
                        "data mean the header is wrong"));
  EXPECT_THAT(parse_error(npy(1, dict("<f4", "()"))),
              HasSubstr("has 0 bytes of data, shape () of <f4 needs 4"));
}

// ---- mutations ----------------------------------------------------------------------------

using attn::test::Outcome;
using attn::test::problem_of;

// read_npy reads a regular file header first and its data in pieces, parse_npy has
// all the bytes: the two must agree on every input, value for value, error for error.
void expect_file_reads_alike(const Bytes& bytes, const Tensor* parsed, const std::string& parse_problem,
                             const std::string& what) {
  const std::filesystem::path path = attn::test::test_dir() / "mutant.npy";
  std::ofstream(path, std::ios::binary | std::ios::trunc)
      .write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  try {
    const Tensor t = attn::io::read_npy(path.string());
    ASSERT_NE(parsed, nullptr) << what << ": read_npy accepts what parse_npy refuses: " << parse_problem;
    ASSERT_EQ(t.shape(), parsed->shape()) << what;
    const std::vector<float> a = t.to_vector(), b = parsed->to_vector();
    EXPECT_EQ(0, a.empty() ? 0 : std::memcmp(a.data(), b.data(), a.size() * sizeof(float))) << what;
  } catch (const attn::Error& e) {
    ASSERT_EQ(parsed, nullptr) << what << ": read_npy refuses what parse_npy accepts: " << e.what();
    EXPECT_EQ(problem_of(e.what(), "[read_npy] " + path.string() + ": "), parse_problem) << what;
  }
}

// Anything but a tensor consistent with its shape, or an attn::Error naming the
// function and source, fails the test.
Outcome parse_mutant(const Bytes& bytes, const std::string& what) {
  return attn::test::parse_mutant(
      bytes, what, "[parse_npy] mutant.npy: ",
      [](std::span<const std::uint8_t> b) { return parse_npy(b, "mutant.npy"); },
      [&](const Tensor& t) {
        std::int64_t product = 1;
        for (std::int64_t s : t.shape()) product *= s;
        EXPECT_EQ(t.numel(), product) << what;
        EXPECT_EQ(t.strides(), attn::contiguous_strides(t.shape())) << what;
        EXPECT_EQ(static_cast<std::int64_t>(t.to_vector().size()), t.numel()) << what;
        expect_file_reads_alike(bytes, &t, "", what);
      },
      [&](const std::string& problem) { expect_file_reads_alike(bytes, nullptr, problem, what); });
}

std::vector<Bytes> seeds() {
  return {
      npy(1, dict("<f4", "(2, 3)"), encode<float>({1, 2, 3, 4, 5, 6})),
      npy(2, dict("<f2", "(2, 1, 2)", true), encode<std::uint16_t>({0x3C00, 0x0001, 0x7C00, 0x7E00})),
      npy(3, dict(">i8", "(3,)"), encode<std::int64_t>({-1, 0, INT64_MAX}, true)),
      npy(1, dict("|b1", "()"), {1}),
      npy(1, dict("<u2", "(0, 5)", true)),
  };
}

TEST(NpyMutations, EveryTruncationIsRefused) {
  // The data must be exactly as long as the header says, so every proper prefix
  // of a valid file is an error, and the whole file is not.
  for (const Bytes& seed : seeds()) {
    for (std::size_t len = 0; len < seed.size(); ++len) {
      const Bytes prefix(seed.begin(), seed.begin() + static_cast<std::ptrdiff_t>(len));
      EXPECT_FALSE(error_of([&] { parse(prefix); }).empty()) << "prefix of " << len << " bytes";
      EXPECT_EQ(parse_mutant(prefix, "prefix of " + std::to_string(len) + " bytes"), Outcome::refused);
    }
    EXPECT_NO_THROW(parse(seed));
  }
}

TEST(NpyMutations, MutantsParseOrThrowAttnError) {
  std::mt19937_64 rng(20240607);
  auto below = [&rng](std::size_t n) { return static_cast<std::size_t>(rng() % n); };
  // Fragments that steer mutants into the parser's corners.
  const std::vector<std::string> tokens = {
      "(", ")", ",", "'", "\"", ":", "{", "}", " ", "\n", "True", "False", "L", "-", "0",
      "'descr'", "'shape'", "'fortran_order'", "'extra'", "<f8", ">f2", "|b1", "<c8", "|O",
      "(0,)", "()", "(1, 1, 1, 1)", "9223372036854775807", "9223372036854775808",
      "18446744073709551616", "4294967296", "\x93NUMPY", "\xC3\xA9", "\xFF", std::string(1, '\0')};
  const std::vector<std::string> huge_shapes = {
      "(9223372036854775807,)", "(4611686018427387904, 2)", "(3037000500, 3037000500)",
      "(2147483648, 2147483648, 2)", "(0, 9223372036854775807)", "(1, 2305843009213693952)",
      "(18446744073709551615,)", "(65536, 65536, 65536, 65536)"};

  int parsed = 0, refused = 0, total = 0;
  const std::vector<Bytes> all = seeds();
  for (int round = 0; round < 3000; ++round) {
    Bytes m = all[below(all.size())];
    const int kind = static_cast<int>(below(5));
    if (kind == 0) {  // a few random bytes anywhere
      for (std::size_t k = 1 + below(4); k > 0; --k) m[below(m.size())] = static_cast<std::uint8_t>(rng());
    } else if (kind == 1) {  // a bit flip in the preamble or the header
      const std::size_t at = below(std::min<std::size_t>(m.size(), 80));
      m[at] = static_cast<std::uint8_t>(m[at] ^ (1u << below(8)));
    } else if (kind == 2) {  // a header span replaced by a token
      const std::size_t at = 10 + below(60), len = below(6);
      const std::string& t = tokens[below(tokens.size())];
      if (at + len <= m.size())
        m.erase(m.begin() + static_cast<std::ptrdiff_t>(at),
                m.begin() + static_cast<std::ptrdiff_t>(at + len));
      m.insert(m.begin() + static_cast<std::ptrdiff_t>(std::min(at, m.size())), t.begin(), t.end());
    } else if (kind == 3) {  // a huge shape, in a file of any version with some data
      const std::string descr[] = {"<f4", "|u1", ">f8", "<f2"};
      m = npy(1 + static_cast<int>(below(3)),
              dict(descr[below(4)], huge_shapes[below(huge_shapes.size())], below(2) == 0),
              Bytes(below(64), 0x41));
    } else {  // a random header length
      const std::size_t length_bytes = m[6] == 1 ? 2 : 4;
      for (std::size_t i = 0; i < length_bytes && 8 + i < m.size(); ++i)
        m[8 + i] = static_cast<std::uint8_t>(below(2) == 0 ? rng() : (i == 0 ? below(256) : 0));
    }
    ++total;
    const std::string what = "round " + std::to_string(round) + " (mutation " +
                             std::to_string(kind) + ")";
    const Outcome outcome = parse_mutant(m, what);
    if (outcome == Outcome::failed) return;  // the first failure says enough
    (outcome == Outcome::parsed ? parsed : refused) += 1;
  }
  // Both outcomes occur: the mutants reach past the preamble into the data.
  EXPECT_GT(parsed, 50) << total;
  EXPECT_GT(refused, 1000) << total;
}

}  // namespace
