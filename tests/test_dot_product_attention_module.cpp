// attn::DotProductAttention: d2l's module (document 004) and the unscaled form of
// document 001, against the long-double pooling oracle of mha_oracle.hpp.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "attn/modules.hpp"
#include "mha_oracle.hpp"
#include "test_util.hpp"
#include "tolerance.hpp"

using attn::DotProductAttention;
using attn::IndexTensor;
using attn::MaskFill;
using attn::Rng;
using attn::Shape;
using attn::Tensor;
using attn::test::error_of;
using attn::test::float_chain_budget;
using attn::test::relative_error;
using ::testing::HasSubstr;

namespace mha = attn::test::mha;

namespace {

// softmax(q k^T * scale, masked) v, in long double.
attn::test::OracleResult oracle(const Tensor& q, const Tensor& k, const Tensor& v, const std::optional<IndexTensor>& valid_lens,
                   long double scale, MaskFill fill, const Tensor* dropped = nullptr) {
  const auto score = [&](mha::Index b, mha::Index i, mha::Index j) {
    long double dot = 0;
    for (mha::Index d = 0; d < q.size(2); ++d) dot += static_cast<long double>(q(b, i, d)) * k(b, j, d);
    return dot * scale;
  };
  return mha::attention_pooling(score, q.size(0), q.size(1), v, valid_lens, fill, dropped);
}

// Scores over D, softmax and weighted sum over Lk.
double output_budget(std::int64_t d, std::int64_t lk) { return float_chain_budget({d, lk, lk}); }
double weights_budget(std::int64_t d, std::int64_t lk) { return float_chain_budget({d, lk}); }

// Document 004's example: keys = ones(2, 10, 2), values = arange(40).reshape(1, 10, 4)
// repeated to batch 2, valid_lens = [2, 6].
struct Document004 {
  Tensor keys = Tensor::full({2, 10, 2}, 1.0f);
  Tensor values = Tensor::arange(40).reshape({1, 10, 4}).expand({2, 10, 4});
  IndexTensor valid_lens = IndexTensor::from({2}, {2, 6});
};

}  // namespace

TEST(DotProductAttentionModule, Document004Example) {
  // Equal keys give equal scores, so the output is the mean of the first valid_lens
  // values: rows 0-1 -> [2, 3, 4, 5], rows 0-5 -> [10, 11, 12, 13].
  const Document004 doc;
  Rng rng(0);
  const Tensor queries = Tensor::randn({2, 1, 2}, rng);  // torch.normal(0, 1, (2, 1, 2))
  DotProductAttention attention(0.5);
  EXPECT_TRUE(attention.training());
  EXPECT_EQ(attention.fill, MaskFill::d2l);
  attention.eval();
  const Tensor out = attention.forward(queries, doc.keys, doc.values, doc.valid_lens);
  ASSERT_EQ(out.shape(), (Shape{2, 1, 4}));
  const std::vector<long double> want_out = {2, 3, 4, 5, 10, 11, 12, 13};
  EXPECT_LE(relative_error(out.to_vector(), want_out), output_budget(2, 10));

  ASSERT_EQ(attention.attention_weights.shape(), (Shape{2, 1, 10}));
  std::vector<long double> want_weights(20, 0.0L);
  for (int j = 0; j < 2; ++j) want_weights[j] = 0.5L;
  for (int j = 0; j < 6; ++j) want_weights[10 + j] = 1.0L / 6;
  EXPECT_LE(relative_error(attention.attention_weights.to_vector(), want_weights), weights_budget(2, 10));
  for (int j = 2; j < 10; ++j) EXPECT_EQ(attention.attention_weights(0, 0, j), 0.0f);
  for (int j = 6; j < 10; ++j) EXPECT_EQ(attention.attention_weights(1, 0, j), 0.0f);

  // The same on contiguous values (the example's repeat copies them).
  const Tensor again = attention.forward(queries, doc.keys, doc.values.clone(), doc.valid_lens);
  EXPECT_LE(relative_error(again.to_vector(), want_out), output_budget(2, 10));
}

TEST(DotProductAttentionModule, MatchesOracleWithValidLens) {
  Rng rng(1);
  const Tensor q = Tensor::randn({3, 4, 6}, rng);
  const Tensor k = Tensor::randn({3, 7, 6}, rng);
  const Tensor v = Tensor::randn({3, 7, 5}, rng);
  DotProductAttention attention(0.0);
  const long double scale = 1 / std::sqrt(6.0L);
  const std::vector<std::optional<IndexTensor>> lens = {
      std::nullopt, IndexTensor::from({3}, {7, 1, 4}),
      IndexTensor::from({3, 4}, {1, 2, 3, 4, 7, 6, 5, 0, 2, 2, 7, 1})};
  for (MaskFill fill : {MaskFill::d2l, MaskFill::neg_inf}) {
    for (const auto& valid_lens : lens) {
      SCOPED_TRACE(std::string(fill == MaskFill::d2l ? "d2l" : "neg_inf") + ", valid_lens " +
                   (valid_lens ? valid_lens->shape_string() : "none"));
      attention.fill = fill;
      const Tensor out = attention.forward(q, k, v, valid_lens);
      const attn::test::OracleResult want = oracle(q, k, v, valid_lens, scale, fill);
      ASSERT_EQ(out.shape(), (Shape{3, 4, 5}));
      ASSERT_EQ(attention.attention_weights.shape(), (Shape{3, 4, 7}));
      EXPECT_LE(relative_error(out.to_vector(), want.out), output_budget(6, 7));
      EXPECT_LE(relative_error(attention.attention_weights.to_vector(), want.weights), weights_budget(6, 7));
    }
  }
}

TEST(DotProductAttentionModule, ZeroValidLengthD2lUniformNegInfZero) {
  const Document004 doc;
  Rng rng(2);
  const Tensor queries = Tensor::randn({2, 1, 2}, rng);
  const IndexTensor lens = IndexTensor::from({2}, {0, 6});
  DotProductAttention attention(0.0);
  // d2l (default): every score of the row is -1e6, so it is uniform over all 10 keys
  // and the output is the mean of every value row: [18, 19, 20, 21].
  const Tensor uniform = attention.forward(queries, doc.keys, doc.values, lens);
  EXPECT_LE(relative_error(attention.attention_weights.select(0, 0).to_vector(), std::vector<long double>(10, 0.1L)),
            weights_budget(2, 10));
  const std::vector<long double> want = {18, 19, 20, 21, 10, 11, 12, 13};
  EXPECT_LE(relative_error(uniform.to_vector(), want), output_budget(2, 10));
  // neg_inf: the empty row is zeros, never NaN.
  attention.fill = MaskFill::neg_inf;
  const Tensor zeros = attention.forward(queries, doc.keys, doc.values, lens);
  for (int d = 0; d < 4; ++d) EXPECT_EQ(zeros(0, 0, d), 0.0f);
  for (int j = 0; j < 10; ++j) EXPECT_EQ(attention.attention_weights(0, 0, j), 0.0f);
  const std::vector<long double> want_zero = {0, 0, 0, 0, 10, 11, 12, 13};
  EXPECT_LE(relative_error(zeros.to_vector(), want_zero), output_budget(2, 10));
}

TEST(DotProductAttentionModule, UnscaledIsDocument001) {
  // x1 = randn(2, 3, 4), x2 = randn(2, 5, 4): softmax(bmm(x1, x2^T), -1) then bmm with x2.
  Rng rng(3);
  const Tensor x1 = Tensor::randn({2, 3, 4}, rng);
  const Tensor x2 = Tensor::randn({2, 5, 4}, rng);
  DotProductAttention unscaled(0, false);
  EXPECT_FALSE(unscaled.scaled);
  const Tensor out = unscaled.forward(x1, x2, x2);
  ASSERT_EQ(out.shape(), (Shape{2, 3, 4}));
  const attn::test::OracleResult want = oracle(x1, x2, x2, std::nullopt, 1.0L, MaskFill::d2l);
  EXPECT_LE(relative_error(out.to_vector(), want.out), output_budget(4, 5));
  EXPECT_LE(relative_error(unscaled.attention_weights.to_vector(), want.weights), weights_budget(4, 5));
  // The scaled module divides by sqrt(4) = 2 and so differs.
  DotProductAttention scaled(0);
  const Tensor out_scaled = scaled.forward(x1, x2, x2);
  const attn::test::OracleResult want_scaled = oracle(x1, x2, x2, std::nullopt, 0.5L, MaskFill::d2l);
  EXPECT_LE(relative_error(out_scaled.to_vector(), want_scaled.out), output_budget(4, 5));
  EXPECT_GT(relative_error(out.to_vector(), out_scaled.to_vector()), output_budget(4, 5));
}

TEST(DotProductAttentionModule, DropoutOnlyInTraining) {
  Rng rng(4);
  const Tensor q = Tensor::randn({2, 6, 4}, rng);
  const Tensor k = Tensor::randn({2, 8, 4}, rng);
  const Tensor v = Tensor::randn({2, 8, 3}, rng);
  const IndexTensor lens = IndexTensor::from({2}, {8, 5});
  const attn::test::OracleResult want = oracle(q, k, v, lens, 0.5L, MaskFill::d2l);

  const double p = 0.5;
  DotProductAttention attention(p, true, 77);
  attention.eval();
  const Tensor eval = attention.forward(q, k, v, lens);
  EXPECT_LE(relative_error(eval.to_vector(), want.out), output_budget(4, 8));
  EXPECT_LE(relative_error(attention.attention_weights.to_vector(), want.weights), weights_budget(4, 8));

  attention.train();
  const Tensor train = attention.forward(q, k, v, lens);
  // d2l keeps attention_weights = masked_softmax(scores), before dropout: the eval
  // weights, in training too.
  EXPECT_LE(relative_error(attention.attention_weights.to_vector(), want.weights), weights_budget(4, 8));
  // The output is the weighted sum with dropped-out weights, each 0 or w / (1 - p):
  // the kept set that explains it must explain it within the output's budget.
  const Tensor dropped = mha::dropped_weights_explaining(train, want.weights, v, p);
  const attn::test::OracleResult with_dropped = oracle(q, k, v, lens, 0.5L, MaskFill::d2l, &dropped);
  EXPECT_LE(relative_error(train.to_vector(), with_dropped.out), output_budget(4, 8));
  EXPECT_GT(relative_error(train.to_vector(), eval.to_vector()), output_budget(4, 8))
      << "the training output dropped nothing";
  std::int64_t zeroed = 0, live = 0;
  const std::vector<float> kept = dropped.to_vector();
  for (std::size_t x = 0; x < kept.size(); ++x)
    if (want.weights[x] > 0) live += 1, zeroed += kept[x] == 0.0f ? 1 : 0;
  attn::test::expect_binomial_fraction(zeroed, live, p, "dropped weights");

  // Seeded: the same seed and calls give the same masks.
  DotProductAttention twin(p, true, 77);
  twin.eval();
  twin.forward(q, k, v, lens);
  twin.train();
  EXPECT_EQ(twin.forward(q, k, v, lens).to_vector(), train.to_vector());
  EXPECT_EQ(twin.attention_weights.to_vector(), attention.attention_weights.to_vector());
}

TEST(DotProductAttentionModule, ErrorsNameTheArgumentsAndCallersShapes) {
  const Document004 doc;
  Rng rng(5);
  const Tensor queries = Tensor::randn({2, 1, 2}, rng);
  DotProductAttention attention(0.0);
  const std::string range =
      error_of([&] { attention.forward(queries, doc.keys, doc.values, IndexTensor::from({2}, {2, 11})); });
  EXPECT_THAT(range, HasSubstr("valid_lens"));
  EXPECT_THAT(range, HasSubstr("11"));
  const std::string shape =
      error_of([&] { attention.forward(queries, doc.keys, doc.values, IndexTensor::from({3}, {1, 2, 3})); });
  EXPECT_THAT(shape, HasSubstr("valid_lens"));
  EXPECT_THAT(shape, HasSubstr("(3)"));
  // The shapes in the message are the caller's (B, L, D), not an internal view.
  const std::string width = error_of([&] { attention.forward(Tensor::zeros({2, 1, 3}), doc.keys, doc.values); });
  EXPECT_THAT(width, HasSubstr("(2, 1, 3)"));
  EXPECT_THAT(width, HasSubstr("(2, 10, 2)"));
}
