// attn::Tensor: factories, views, copies, element access and errors.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "attn/tensor.hpp"
#include "test_util.hpp"

using attn::BoolTensor;
using attn::IndexTensor;
using attn::Rng;
using attn::Shape;
using attn::Tensor;
using attn::test::error_of;
using attn::test::kSixSigmas;
using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;

namespace {

// 0, 1, ..., n-1 in `shape`.
Tensor iota(const Shape& shape) { return Tensor::arange(attn::shape_numel(shape)).reshape(shape); }

}  // namespace

TEST(Tensor, ShapeStr) {
  EXPECT_EQ(attn::shape_str({2, 3, 4}), "(2, 3, 4)");
  EXPECT_EQ(attn::shape_str({7}), "(7)");
  EXPECT_EQ(attn::shape_str({}), "()");
  EXPECT_EQ(Tensor::zeros({2, 0, 5}).shape_string(), "(2, 0, 5)");
  EXPECT_EQ(attn::shape_numel({2, 3, 4}), 24);
  EXPECT_EQ(attn::contiguous_strides({2, 3, 4}), (Shape{12, 4, 1}));
}

TEST(Tensor, ZerosFullFrom) {
  const Tensor z = Tensor::zeros({2, 3});
  EXPECT_EQ(z.shape(), (Shape{2, 3}));
  EXPECT_EQ(z.strides(), (Shape{3, 1}));
  EXPECT_EQ(z.numel(), 6);
  EXPECT_TRUE(z.is_contiguous());
  EXPECT_THAT(z.to_vector(), ElementsAre(0, 0, 0, 0, 0, 0));

  EXPECT_THAT(Tensor::full({2, 2}, 1.5f).to_vector(), ElementsAre(1.5f, 1.5f, 1.5f, 1.5f));

  const Tensor f = Tensor::from({2, 3}, {1, 2, 3, 4, 5, 6});
  EXPECT_EQ(f(0, 0), 1);
  EXPECT_EQ(f(0, 2), 3);
  EXPECT_EQ(f(1, 0), 4) << "from() must fill in row-major order";
  EXPECT_EQ(f(1, 2), 6);
  EXPECT_EQ(f.at({1, 1}), 5);
  EXPECT_THAT(error_of([] { Tensor::from({2, 3}, {1, 2}); }), HasSubstr("(2, 3)"));
  EXPECT_THROW(Tensor::zeros({2, -1}), attn::Error);

  EXPECT_THAT(IndexTensor::arange(4).to_vector(), ElementsAre(0, 1, 2, 3));
  EXPECT_THAT(BoolTensor::from({2}, {true, false}).to_vector(), ElementsAre(true, false));
}

TEST(Tensor, RandnAndRandAreDeterministicBySeed) {
  Rng a(42), b(42), c(43);
  const std::vector<float> xa = Tensor::randn({3, 5}, a).to_vector();
  const std::vector<float> xb = Tensor::randn({3, 5}, b).to_vector();
  const std::vector<float> xc = Tensor::randn({3, 5}, c).to_vector();
  EXPECT_EQ(xa, xb) << "same seed, same stream";
  EXPECT_NE(xa, xc) << "different seeds must give different tensors";
  // The stream goes on: a second draw differs from the first.
  EXPECT_NE(Tensor::randn({3, 5}, a).to_vector(), xa);

  // Standard normal over many samples: the sample mean of n draws has standard
  // deviation 1 / sqrt(n), the sample variance sqrt(2 / n) (a normal's fourth
  // moment is 3); six of each (test_util.hpp).
  Rng r(7);
  const std::vector<float> many = Tensor::randn({4000}, r).to_vector();
  const double n = static_cast<double>(many.size());
  double mean = 0, sq = 0;
  for (float x : many) mean += x, sq += double(x) * x;
  mean /= n;
  const double var = sq / n - mean * mean;
  EXPECT_NEAR(mean, 0.0, kSixSigmas / std::sqrt(n));
  EXPECT_NEAR(var, 1.0, kSixSigmas * std::sqrt(2 / n));

  Rng u1(5), u2(5);
  const std::vector<float> ua = Tensor::rand({1000}, u1).to_vector();
  EXPECT_EQ(ua, Tensor::rand({1000}, u2).to_vector());
  double sum = 0;
  for (float x : ua) {
    EXPECT_GE(x, 0.0f);
    EXPECT_LT(x, 1.0f);
    sum += x;
  }
  // U(0, 1) has mean 1/2 and variance 1/12: six standard deviations of the mean.
  const double un = static_cast<double>(ua.size());
  EXPECT_NEAR(sum / un, 0.5, kSixSigmas * std::sqrt(1 / (12 * un)));
}

TEST(Tensor, DataIs64ByteAligned) {
  for (std::int64_t n : {1, 3, 17, 64, 1000}) {
    const Tensor t = Tensor::zeros({n});
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(t.data()) % 64, 0u) << "numel " << n;
    const IndexTensor i = IndexTensor::zeros({n});
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(i.data()) % 64, 0u) << "index numel " << n;
    const BoolTensor b = BoolTensor::zeros({n});
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(b.data()) % 64, 0u) << "bool numel " << n;
  }
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(iota({3, 5}).clone().data()) % 64, 0u);
}

TEST(Tensor, CopyIsAHandleCloneIsACopy) {
  const Tensor a = iota({2, 2});
  const Tensor alias = a;
  const Tensor copy = a.clone();
  alias(0, 1) = 100;
  EXPECT_EQ(a(0, 1), 100) << "copying a tensor copies the handle";
  EXPECT_EQ(copy(0, 1), 1) << "clone copies the elements";
  EXPECT_NE(copy.data(), a.data());
}

TEST(Tensor, PermuteIsAView) {
  const Tensor x = iota({2, 3, 4});
  const Tensor p = x.permute({2, 0, 1});
  EXPECT_EQ(p.shape(), (Shape{4, 2, 3}));
  EXPECT_EQ(p.strides(), (Shape{1, 12, 4}));
  EXPECT_EQ(p.data(), x.data());
  EXPECT_FALSE(p.is_contiguous());
  for (int a = 0; a < 2; ++a)
    for (int b = 0; b < 3; ++b)
      for (int c = 0; c < 4; ++c) EXPECT_EQ(p(c, a, b), x(a, b, c));
  p(3, 1, 2) = -1;
  EXPECT_EQ(x(1, 2, 3), -1) << "a permuted view shares storage";

  EXPECT_EQ(x.permute({-1, 0, 1}).shape(), (Shape{4, 2, 3})) << "negative dims count from the end";
  EXPECT_THROW(x.permute({0, 0, 1}), attn::Error);
  EXPECT_THROW(x.permute({0, 1}), attn::Error);
}

TEST(Tensor, TransposeAndToVectorOrderOnStridedViews) {
  const Tensor x = iota({2, 3});
  const Tensor t = x.transpose(0, 1);
  EXPECT_EQ(t.shape(), (Shape{3, 2}));
  EXPECT_EQ(t.strides(), (Shape{1, 3}));
  EXPECT_THAT(t.to_vector(), ElementsAre(0, 3, 1, 4, 2, 5)) << "row-major order of the view";
  EXPECT_EQ(x.transpose(-1, -2).shape(), (Shape{3, 2}));

  const Tensor t3 = iota({2, 3, 4}).transpose(0, 2);  // (4, 3, 2)
  std::vector<float> want;
  for (int c = 0; c < 4; ++c)
    for (int b = 0; b < 3; ++b)
      for (int a = 0; a < 2; ++a) want.push_back(static_cast<float>(a * 12 + b * 4 + c));
  EXPECT_THAT(t3.to_vector(), ElementsAreArray(want));
}

TEST(Tensor, ReshapeIsAViewWhenPossible) {
  const Tensor x = iota({2, 3, 4});
  const Tensor r = x.reshape({6, 4});
  EXPECT_EQ(r.shape(), (Shape{6, 4}));
  EXPECT_EQ(r.data(), x.data()) << "reshape of a contiguous tensor is a view";
  EXPECT_EQ(r(4, 1), x(1, 1, 1));
  EXPECT_EQ(x.reshape({-1}).shape(), (Shape{24}));
  EXPECT_EQ(x.reshape({4, -1}).shape(), (Shape{4, 6}));
  EXPECT_THROW(x.reshape({5, -1}), attn::Error);
  EXPECT_THROW(x.reshape({-1, -1}), attn::Error);
  EXPECT_THROW(x.reshape({5, 5}), attn::Error);

  // Splitting the last dim of a (B, L, H*D) tensor into heads, then permuting:
  // the head split of multi-head attention, without a copy.
  const Tensor proj = iota({2, 3, 6});
  const Tensor heads = proj.reshape({2, 3, 2, 3}).permute({0, 2, 1, 3});  // (B, H, L, D)
  EXPECT_EQ(heads.data(), proj.data());
  EXPECT_EQ(heads.shape(), (Shape{2, 2, 3, 3}));
  EXPECT_EQ(heads(1, 1, 2, 0), proj(1, 2, 3));

  // A transposed view can still split a dim without a copy.
  const Tensor t = iota({4, 6}).transpose(0, 1);  // (6, 4), strides (1, 6)
  const Tensor split = t.reshape({2, 3, 4});
  EXPECT_EQ(split.data(), t.data());
  EXPECT_EQ(split.strides(), (Shape{3, 1, 6}));
  for (int a = 0; a < 2; ++a)
    for (int b = 0; b < 3; ++b)
      for (int c = 0; c < 4; ++c) EXPECT_EQ(split(a, b, c), t(a * 3 + b, c));
}

TEST(Tensor, ReshapeThatNeedsACopyThrowsNamingContiguous) {
  const Tensor t = iota({4, 6}).transpose(0, 1);
  const std::string msg = error_of([&] { t.reshape({24}); });
  EXPECT_THAT(msg, HasSubstr("contiguous")) << msg;
  EXPECT_THAT(msg, HasSubstr("(6, 4)")) << msg;
  // And the suggested fix works.
  const Tensor flat = t.contiguous().reshape({24});
  EXPECT_EQ(flat.to_vector(), t.to_vector());
  // Merging heads back after a permute needs a copy too.
  const Tensor heads = iota({2, 3, 6}).reshape({2, 3, 2, 3}).permute({0, 2, 1, 3});
  EXPECT_THAT(error_of([&] { heads.reshape({2, 2, 9}); }), HasSubstr("contiguous"));
}

TEST(Tensor, ExpandUsesStrideZero) {
  const Tensor row = Tensor::from({1, 3}, {1, 2, 3});
  const Tensor e = row.expand({4, 3});
  EXPECT_EQ(e.shape(), (Shape{4, 3}));
  EXPECT_EQ(e.stride(0), 0);
  EXPECT_EQ(e.stride(1), 1);
  EXPECT_EQ(e.data(), row.data());
  EXPECT_THAT(e.to_vector(), ElementsAre(1, 2, 3, 1, 2, 3, 1, 2, 3, 1, 2, 3));

  const Tensor lead = Tensor::from({3}, {1, 2, 3}).expand({2, 2, 3});
  EXPECT_EQ(lead.strides(), (Shape{0, 0, 1})) << "new leading dims get stride 0";
  EXPECT_EQ(lead(1, 1, 2), 3);

  const Tensor col = Tensor::from({2, 1}, {5, 6}).expand({2, 3});
  EXPECT_THAT(col.to_vector(), ElementsAre(5, 5, 5, 6, 6, 6));
  EXPECT_FALSE(col.is_contiguous());
  EXPECT_TRUE(col.contiguous().is_contiguous());
  EXPECT_THAT(col.contiguous().to_vector(), ElementsAre(5, 5, 5, 6, 6, 6));

  EXPECT_THAT(error_of([&] { row.expand({4, 2}); }), HasSubstr("(1, 3)"));
  EXPECT_THROW(row.expand({3}), attn::Error) << "expand cannot drop dims";
}

TEST(Tensor, UnsqueezeSliceSelect) {
  const Tensor x = iota({3, 4});
  EXPECT_EQ(x.unsqueeze(0).shape(), (Shape{1, 3, 4}));
  EXPECT_EQ(x.unsqueeze(-1).shape(), (Shape{3, 4, 1}));
  EXPECT_EQ(x.unsqueeze(1)(2, 0, 3), x(2, 3));

  const Tensor s = x.slice(1, 1, 3);  // columns 1, 2
  EXPECT_EQ(s.shape(), (Shape{3, 2}));
  EXPECT_THAT(s.to_vector(), ElementsAre(1, 2, 5, 6, 9, 10));
  EXPECT_FALSE(s.is_contiguous());
  s(0, 0) = 50;
  EXPECT_EQ(x(0, 1), 50) << "a slice shares storage";

  const Tensor rows = x.slice(0, 1, 3);
  EXPECT_TRUE(rows.is_contiguous());
  EXPECT_EQ(rows(0, 0), 4);
  EXPECT_EQ(x.slice(0, 2, 2).numel(), 0);

  const Tensor col = x.select(1, 2);
  EXPECT_EQ(col.shape(), (Shape{3}));
  EXPECT_THAT(col.to_vector(), ElementsAre(2, 6, 10));
  const Tensor row = x.select(0, 1);
  EXPECT_THAT(row.to_vector(), ElementsAre(4, 5, 6, 7));
  EXPECT_THAT(x.select(-1, 0).to_vector(), ElementsAre(0, 4, 8));

  EXPECT_THROW(x.slice(1, 2, 5), attn::Error);
  EXPECT_THROW(x.slice(1, 3, 2), attn::Error);
  EXPECT_THROW(x.select(0, 3), attn::Error);
  EXPECT_THROW(x.select(2, 0), attn::Error);
}

TEST(Tensor, CloneAndContiguousOfStridedViews) {
  const Tensor x = iota({2, 3, 4});
  EXPECT_EQ(x.contiguous().data(), x.data()) << "contiguous() of a dense tensor is itself";
  const Tensor p = x.permute({1, 2, 0});
  const Tensor c = p.contiguous();
  EXPECT_NE(c.data(), x.data());
  EXPECT_TRUE(c.is_contiguous());
  EXPECT_EQ(c.shape(), p.shape());
  EXPECT_EQ(c.to_vector(), p.to_vector());
  EXPECT_EQ(c.strides(), attn::contiguous_strides(p.shape()));
  const Tensor cl = p.clone();
  EXPECT_TRUE(cl.is_contiguous());
  EXPECT_EQ(cl.to_vector(), p.to_vector());
}

TEST(Tensor, CopyFromIntoStridedView) {
  const Tensor dst = Tensor::zeros({3, 4});
  const Tensor cols = dst.slice(1, 1, 3);  // (3, 2) strided
  cols.copy_from(Tensor::from({3, 2}, {1, 2, 3, 4, 5, 6}));
  EXPECT_THAT(dst.to_vector(), ElementsAre(0, 1, 2, 0, 0, 3, 4, 0, 0, 5, 6, 0));

  // Source read in the view's row-major order.
  const Tensor t = Tensor::zeros({2, 3});
  t.copy_from(iota({3, 2}).transpose(0, 1));
  EXPECT_THAT(t.to_vector(), ElementsAre(0, 2, 4, 1, 3, 5));

  // Overlapping views of one storage: the copy goes through a buffer.
  const Tensor x = iota({2, 2});
  x.copy_from(x.transpose(0, 1));
  EXPECT_THAT(x.to_vector(), ElementsAre(0, 2, 1, 3));

  const std::string msg = error_of([&] { dst.copy_from(Tensor::zeros({4, 3})); });
  EXPECT_THAT(msg, HasSubstr("(4, 3)"));
  EXPECT_THAT(msg, HasSubstr("(3, 4)"));
}

TEST(Tensor, IndexOutOfRangeThrows) {
  const Tensor x = iota({2, 3});
  EXPECT_THROW(x(2, 0), attn::Error);
  EXPECT_THROW(x(0, 3), attn::Error);
  EXPECT_THROW(x(-1, 0), attn::Error);
  EXPECT_THROW(x(0), attn::Error) << "wrong number of indices";
  EXPECT_THROW(x(0, 0, 0), attn::Error);
  EXPECT_THROW(x.at({0, 5}), attn::Error);
  EXPECT_THROW(x.at({0}), attn::Error);
  EXPECT_THROW(x.size(2), attn::Error);
  EXPECT_THAT(error_of([&] { x(0, 7); }), HasSubstr("(2, 3)"));
  EXPECT_EQ(x.size(-1), 3);
  EXPECT_EQ(x.stride(-2), 3);
}

TEST(Tensor, WrapViewsExternalMemory) {
  std::vector<float> buf = {1, 2, 3, 4, 5, 6};
  const Tensor w = Tensor::wrap(buf.data(), {2, 3});
  EXPECT_EQ(w(1, 0), 4);
  w(0, 0) = 9;
  EXPECT_EQ(buf[0], 9) << "wrap does not copy";
  const Tensor wt = Tensor::wrap(buf.data(), {3, 2}, {1, 3});
  EXPECT_THAT(wt.to_vector(), ElementsAre(9, 4, 2, 5, 3, 6));
  EXPECT_THROW(Tensor::wrap(buf.data(), {2, 3}, {1}), attn::Error);
}

TEST(Tensor, WrapWithAnOwnerKeepsItAliveThroughEveryView) {
  auto buf = std::make_shared<std::vector<float>>(std::vector<float>{1, 2, 3, 4, 5, 6});
  std::weak_ptr<std::vector<float>> watch = buf;
  Tensor view;
  {
    const Tensor w = Tensor::wrap(buf->data(), {2, 3}, {3, 1}, buf);
    buf.reset();
    view = w.transpose(0, 1).slice(0, 1, 3);  // (2, 2): columns 1 and 2
  }
  ASSERT_FALSE(watch.expired()) << "a view of the wrapped memory holds its owner";
  EXPECT_THAT(view.to_vector(), ElementsAre(2, 5, 3, 6));
  view(0, 0) = 9;
  EXPECT_EQ((*watch.lock())[1], 9) << "wrap with an owner does not copy";
  view = Tensor{};
  EXPECT_TRUE(watch.expired()) << "the last view released the owner";
  EXPECT_THROW(Tensor::wrap(nullptr, {2}, {1, 1}, std::make_shared<int>(0)), attn::Error);
}

TEST(Tensor, ToStringLooksLikeTorch) {
  const std::string s = attn::to_string(Tensor::from({1, 2}, {0.5f, 0.5f}));
  EXPECT_THAT(s, HasSubstr("tensor("));
  EXPECT_THAT(s, HasSubstr("0.5000"));
}

TEST(Tensor, ShapesWhoseSizeOverflowsInt64Throw) {
  const std::int64_t big = std::int64_t{1} << 40;
  // 2^80 elements.
  EXPECT_THAT(error_of([&] { Tensor::zeros({big, big}); }), HasSubstr("(1099511627776, 1099511627776)"));
  EXPECT_THROW(Tensor::full({big, big}, 1.0f), attn::Error);
  EXPECT_THROW(BoolTensor::zeros({big, big}), attn::Error);
  Rng rng(1);
  EXPECT_THROW(Tensor::randn({4, big, big}, rng), attn::Error);
  // The element count fits in int64, the byte size does not: 2^62 floats, 2^61 int64s.
  EXPECT_THROW(Tensor::zeros({std::int64_t{1} << 62}), attn::Error);
  EXPECT_THROW(IndexTensor::zeros({std::int64_t{1} << 61}), attn::Error);
  EXPECT_THROW(Tensor::zeros({std::int64_t{1} << 31, std::int64_t{1} << 31}), attn::Error);
  // Views are checked too: wrap and expand.
  float x = 0;
  EXPECT_THROW(Tensor::wrap(&x, {big, big}, {0, 0}), attn::Error);
  EXPECT_THROW(Tensor::from({1}, {1.0f}).expand({big, big}), attn::Error);
}

TEST(Tensor, ZeroSizeShapesWithHugeSizesAreEmpty) {
  const std::int64_t big = std::int64_t{1} << 40;
  // A zero size anywhere makes an empty tensor, however large the other sizes: its
  // element count, 0, overflows nothing (torch.zeros(2**40, 2**40, 0) is empty too).
  for (const Shape& empty : {Shape{0, big, big}, Shape{big, big, 0}}) {
    try {
      const Tensor t = Tensor::zeros(empty);
      EXPECT_EQ(t.numel(), 0) << attn::shape_str(empty);
      EXPECT_EQ(t.shape(), empty);
    } catch (const attn::Error& e) {
      ADD_FAILURE() << attn::shape_str(empty) << " has no elements, yet: " << e.what();
    }
  }
}

TEST(Tensor, ExpandToNegativeSizesThrows) {
  const Tensor row = Tensor::from({1, 3}, {1, 2, 3});
  EXPECT_THAT(error_of([&] { row.expand({-1, 3}); }), HasSubstr("(-1, 3)"));
  EXPECT_THROW(row.expand({-2, 1, 3}), attn::Error) << "a negative new leading dim";
  EXPECT_THROW(Tensor::from({1}, {1.0f}).expand({-4}), attn::Error);
}

TEST(Tensor, IndexingAnUndefinedTensorThrows) {
  // No storage to read: the error says so, whatever the indices (at({}) has the
  // rank, 0, of an undefined tensor, so only this check stands between it and null).
  const Tensor none;
  EXPECT_FALSE(none.defined());
  EXPECT_THAT(error_of([&] { none(0); }), HasSubstr("undefined"));
  EXPECT_THAT(error_of([&] { none(0, 0); }), HasSubstr("undefined"));
  EXPECT_THAT(error_of([&] { none.at({}); }), HasSubstr("undefined"));
  EXPECT_THAT(error_of([] { BoolTensor{}(1); }), HasSubstr("undefined"));
  EXPECT_THAT(error_of([] { IndexTensor{}.at({}); }), HasSubstr("undefined"));
  // A defined scalar (rank 0, one element) is read with no indices.
  const Tensor scalar = Tensor::full({}, 2.5f);
  EXPECT_EQ(scalar.at({}), 2.5f);
}
