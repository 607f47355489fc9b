// attn::masked_softmax: d2l's softmax with valid_lens (document 004), against the
// long-double oracle.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "attn/ops.hpp"
#include "oracle.hpp"
#include "test_util.hpp"
#include "tolerance.hpp"

using attn::IndexTensor;
using attn::MaskFill;
using attn::Rng;
using attn::Tensor;
using attn::test::error_of;
using attn::test::kInf;
using attn::test::kReferenceBudget;
using attn::test::relative_error;
using ::testing::HasSubstr;

namespace {

// The oracle: row r (in row-major order of x's view) keeps its first length(r) entries.
std::vector<long double> oracle_masked_softmax(const Tensor& x,
                                               const std::function<std::int64_t(std::int64_t)>& length,
                                               MaskFill fill) {
  const std::vector<float> values = x.to_vector();
  const std::int64_t cols = x.size(-1), rows = x.numel() / cols;
  std::vector<long double> out, s(cols), w;
  for (std::int64_t r = 0; r < rows; ++r) {
    for (std::int64_t c = 0; c < cols; ++c)
      s[c] = attn::test::masked_score(c < length(r), values[r * cols + c], fill);
    attn::test::oracle_softmax_row(s, w);
    out.insert(out.end(), w.begin(), w.end());
  }
  return out;
}

// Checks every row of y: sums to 1 over its first length(r) entries, exactly 0
// after, no NaN.
void expect_rows_normalized(const Tensor& y, const std::function<std::int64_t(std::int64_t)>& length) {
  const std::vector<float> v = y.to_vector();
  const std::int64_t cols = y.size(-1), rows = y.numel() / cols;
  for (std::int64_t r = 0; r < rows; ++r) {
    double sum = 0;
    for (std::int64_t c = 0; c < cols; ++c) {
      const float w = v[r * cols + c];
      EXPECT_FALSE(std::isnan(w)) << "row " << r << " col " << c;
      if (c < length(r)) {
        sum += w;
      } else {
        EXPECT_EQ(w, 0.0f) << "row " << r << " col " << c << " is past valid length " << length(r);
      }
    }
    if (length(r) > 0) {
      EXPECT_NEAR(sum, 1.0, kReferenceBudget) << "row " << r;
    }
  }
}

}  // namespace

TEST(MaskedSoftmax, Document004ValidLens1D) {
  // masked_softmax(torch.rand(2, 2, 4), torch.tensor([2, 3])): each length covers
  // both rows of its batch.
  Rng rng(4);
  const Tensor x = Tensor::rand({2, 2, 4}, rng);
  const IndexTensor lens = IndexTensor::from({2}, {2, 3});
  const auto length = [](std::int64_t r) { return r < 2 ? 2 : 3; };
  for (MaskFill fill : {MaskFill::neg_inf, MaskFill::d2l}) {
    const Tensor y = attn::masked_softmax(x, lens, fill);
    EXPECT_EQ(y.shape(), x.shape());
    EXPECT_LE(relative_error(y.to_vector(), oracle_masked_softmax(x, length, fill)), kReferenceBudget)
        << "fill " << static_cast<int>(fill);
    expect_rows_normalized(y, length);
  }
}

TEST(MaskedSoftmax, Document004ValidLens2D) {
  // masked_softmax(torch.rand(2, 2, 4), torch.tensor([[1, 3], [2, 4]])): one length per row.
  Rng rng(40);
  const Tensor x = Tensor::rand({2, 2, 4}, rng);
  const IndexTensor lens = IndexTensor::from({2, 2}, {1, 3, 2, 4});
  const std::vector<std::int64_t> per_row = {1, 3, 2, 4};
  const auto length = [&](std::int64_t r) { return per_row[r]; };
  for (MaskFill fill : {MaskFill::neg_inf, MaskFill::d2l}) {
    const Tensor y = attn::masked_softmax(x, lens, fill);
    EXPECT_LE(relative_error(y.to_vector(), oracle_masked_softmax(x, length, fill)), kReferenceBudget);
    expect_rows_normalized(y, length);
    // Length 1: the whole weight on the first key.
    EXPECT_EQ(y(0, 0, 0), 1.0f);
  }
}

TEST(MaskedSoftmax, ValidLenZeroZerosOrUniform) {
  Rng rng(5);
  const Tensor x = Tensor::randn({2, 3, 4}, rng);
  const IndexTensor lens = IndexTensor::from({2}, {0, 2});
  // neg_inf: an empty row is all zeros.
  const Tensor z = attn::masked_softmax(x, lens, MaskFill::neg_inf);
  for (float w : z.select(0, 0).to_vector()) EXPECT_EQ(w, 0.0f) << "empty row under neg_inf";
  // d2l: every score is -1e6, so the row is uniform over all C keys.
  const Tensor u = attn::masked_softmax(x, lens, MaskFill::d2l);
  for (float w : u.select(0, 0).to_vector()) EXPECT_EQ(w, 0.25f) << "empty row under d2l is 1/C";
  const auto length = [](std::int64_t r) { return r < 3 ? 0 : 2; };
  EXPECT_LE(relative_error(u.to_vector(), oracle_masked_softmax(x, length, MaskFill::d2l)),
            kReferenceBudget);
  EXPECT_LE(relative_error(z.to_vector(), oracle_masked_softmax(x, length, MaskFill::neg_inf)),
            kReferenceBudget);
  for (float w : u.to_vector()) EXPECT_FALSE(std::isnan(w));

  // 1/C for an odd C too.
  const Tensor odd = attn::masked_softmax(Tensor::zeros({1, 1, 3}), IndexTensor::from({1}, {0}),
                                          MaskFill::d2l);
  for (float w : odd.to_vector()) EXPECT_EQ(w, static_cast<float>(1.0 / 3.0));
}

TEST(MaskedSoftmax, HugeAndInfiniteScoresStayFinite) {
  const Tensor x = Tensor::from({1, 4, 4}, {1e30f, 0.0f, -kInf, 5.0f,        //
                                            1e30f, 1e30f, -1e30f, 0.0f,      //
                                            -kInf, -kInf, -kInf, -kInf,      //
                                            -1e30f, -1e30f, 3.0f, -kInf});
  for (MaskFill fill : {MaskFill::neg_inf, MaskFill::d2l}) {
    const Tensor y = attn::masked_softmax(x, std::nullopt, fill);
    for (float w : y.to_vector()) EXPECT_TRUE(std::isfinite(w)) << "got " << w;
    EXPECT_EQ(y(0, 0, 0), 1.0f);
    EXPECT_EQ(y(0, 0, 1), 0.0f);
    EXPECT_EQ(y(0, 0, 2), 0.0f);
    EXPECT_EQ(y(0, 1, 0), 0.5f);
    EXPECT_EQ(y(0, 1, 1), 0.5f);
    EXPECT_EQ(y(0, 1, 2), 0.0f);
    EXPECT_EQ(y(0, 3, 2), 1.0f);
  }
  // A row of only -inf has nothing to attend to: zeros, not NaN.
  const Tensor y = attn::masked_softmax(x);
  for (std::int64_t c = 0; c < 4; ++c) EXPECT_EQ(y(0, 2, c), 0.0f);
  EXPECT_LE(relative_error(y.to_vector(),
                           oracle_masked_softmax(x, [](std::int64_t) { return 4; }, MaskFill::neg_inf)),
            kReferenceBudget);

  // Huge scores inside the valid part with masking.
  const Tensor h = attn::masked_softmax(x, IndexTensor::from({1}, {2}));
  EXPECT_EQ(h(0, 0, 0), 1.0f);
  EXPECT_EQ(h(0, 3, 0), 0.5f);
  for (float w : h.to_vector()) EXPECT_FALSE(std::isnan(w));
}

TEST(MaskedSoftmax, NoValidLensIsPlainSoftmax) {
  Rng rng(6);
  const Tensor x = Tensor::randn({3, 2, 7}, rng);
  const Tensor y = attn::masked_softmax(x);
  const auto all = [](std::int64_t) { return std::int64_t{7}; };
  EXPECT_LE(relative_error(y.to_vector(), oracle_masked_softmax(x, all, MaskFill::neg_inf)),
            kReferenceBudget);
  expect_rows_normalized(y, all);
  // Full lengths are the same as none.
  EXPECT_LE(relative_error(attn::masked_softmax(x, IndexTensor::from({3}, {7, 7, 7})).to_vector(),
                           oracle_masked_softmax(x, all, MaskFill::neg_inf)),
            kReferenceBudget);
}

TEST(MaskedSoftmax, TwoDimensionalX) {
  Rng rng(7);
  const Tensor x = Tensor::randn({3, 5}, rng);
  const std::vector<std::int64_t> per_row = {5, 1, 3};
  const auto length = [&](std::int64_t r) { return per_row[r]; };
  const Tensor y = attn::masked_softmax(x, IndexTensor::from({3}, per_row));
  EXPECT_EQ(y.shape(), x.shape());
  EXPECT_LE(relative_error(y.to_vector(), oracle_masked_softmax(x, length, MaskFill::neg_inf)),
            kReferenceBudget);
  expect_rows_normalized(y, length);
  const Tensor plain = attn::masked_softmax(x);
  EXPECT_LE(relative_error(plain.to_vector(),
                           oracle_masked_softmax(x, [](std::int64_t) { return 5; }, MaskFill::neg_inf)),
            kReferenceBudget);
}

TEST(MaskedSoftmax, FourDimensionalXWithPerBatchAndPerRowLengths) {
  // (B, H, Lq, Lk) scores: 1-D lengths repeat over every row of a batch entry.
  Rng rng(8);
  const Tensor x = Tensor::randn({2, 3, 2, 5}, rng);
  const Tensor y = attn::masked_softmax(x, IndexTensor::from({2}, {1, 4}));
  const auto length = [](std::int64_t r) { return r < 6 ? 1 : 4; };
  EXPECT_LE(relative_error(y.to_vector(), oracle_masked_softmax(x, length, MaskFill::neg_inf)),
            kReferenceBudget);
  expect_rows_normalized(y, length);

  std::vector<std::int64_t> per_row(12);
  for (std::size_t r = 0; r < per_row.size(); ++r) per_row[r] = static_cast<std::int64_t>(r % 6);
  const Tensor z = attn::masked_softmax(x, IndexTensor::from({2, 3, 2}, per_row));
  const auto row_length = [&](std::int64_t r) { return per_row[r]; };
  EXPECT_LE(relative_error(z.to_vector(), oracle_masked_softmax(x, row_length, MaskFill::neg_inf)),
            kReferenceBudget);
  expect_rows_normalized(z, row_length);
}

TEST(MaskedSoftmax, StridedInputMatchesOracleAsContiguousCopyDoes) {
  Rng rng(9);
  const Tensor base = Tensor::randn({2, 5, 3}, rng);
  const std::vector<float> before = base.to_vector();
  const Tensor x = base.transpose(1, 2);  // (2, 3, 5), last dim strided
  ASSERT_FALSE(x.is_contiguous());
  const IndexTensor lens = IndexTensor::from({2, 3}, {5, 2, 0, 1, 3, 4});
  const std::vector<std::int64_t> per_row = lens.to_vector();
  const auto length = [&](std::int64_t r) { return per_row[r]; };
  const std::vector<long double> want = oracle_masked_softmax(x, length, MaskFill::neg_inf);
  const Tensor y = attn::masked_softmax(x, lens);
  EXPECT_EQ(y.shape(), (attn::Shape{2, 3, 5}));
  EXPECT_LE(relative_error(y.to_vector(), want), kReferenceBudget);
  EXPECT_LE(relative_error(attn::masked_softmax(x.contiguous(), lens).to_vector(), want), kReferenceBudget);
  expect_rows_normalized(y, length);
  // The input is left as it was, bit for bit.
  EXPECT_EQ(base.to_vector(), before);
}

TEST(MaskedSoftmax, RejectsNegativeLength) {
  const Tensor x = Tensor::zeros({2, 2, 4});
  const std::string msg = error_of([&] { attn::masked_softmax(x, IndexTensor::from({2}, {-1, 2})); });
  EXPECT_THAT(msg, HasSubstr("masked_softmax"));
  EXPECT_THAT(msg, HasSubstr("valid_lens"));
  EXPECT_THAT(msg, HasSubstr("-1"));
  EXPECT_THAT(msg, HasSubstr("(2, 2, 4)"));
}

TEST(MaskedSoftmax, RejectsLengthBeyondColumns) {
  const Tensor x = Tensor::zeros({2, 2, 4});
  const std::string msg =
      error_of([&] { attn::masked_softmax(x, IndexTensor::from({2, 2}, {1, 3, 5, 4})); });
  EXPECT_THAT(msg, HasSubstr("valid_lens"));
  EXPECT_THAT(msg, HasSubstr("5"));
  EXPECT_THAT(msg, HasSubstr("(2, 2, 4)"));
}

TEST(MaskedSoftmax, RejectsWrongValidLensShape) {
  const Tensor x = Tensor::zeros({2, 2, 4});
  const std::string one_d = error_of([&] { attn::masked_softmax(x, IndexTensor::from({3}, {1, 1, 1})); });
  EXPECT_THAT(one_d, HasSubstr("valid_lens"));
  EXPECT_THAT(one_d, HasSubstr("(3)"));
  EXPECT_THAT(one_d, HasSubstr("(2, 2, 4)"));

  const std::string two_d = error_of([&] { attn::masked_softmax(x, IndexTensor::zeros({2, 3})); });
  EXPECT_THAT(two_d, HasSubstr("valid_lens"));
  EXPECT_THAT(two_d, HasSubstr("(2, 3)"));
  EXPECT_THAT(two_d, HasSubstr("(2, 2, 4)"));

  const std::string three_d = error_of([&] { attn::masked_softmax(x, IndexTensor::zeros({2, 2, 4})); });
  EXPECT_THAT(three_d, HasSubstr("valid_lens"));
}
