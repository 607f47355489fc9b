// attn::AdditiveAttention: d2l's Bahdanau attention module (document 004), against
// the long-double pooling oracle of mha_oracle.hpp.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "attn/modules.hpp"
#include "mha_oracle.hpp"
#include "test_util.hpp"
#include "tolerance.hpp"

using attn::AdditiveAttention;
using attn::IndexTensor;
using attn::MaskFill;
using attn::Rng;
using attn::Shape;
using attn::Tensor;
using attn::test::error_of;
using attn::test::float_chain_budget;
using attn::test::HasSubstrs;
using attn::test::names_of;
using attn::test::relative_error;
using ::testing::ElementsAre;

namespace mha = attn::test::mha;

namespace {

// score(q, k) = w_v . tanh(W_q q + W_k k), then d2l's masked softmax and pooling.
attn::test::OracleResult oracle(const AdditiveAttention& a, const Tensor& q, const Tensor& k, const Tensor& v,
                   const std::optional<IndexTensor>& valid_lens, MaskFill fill, const Tensor* dropped = nullptr) {
  const Tensor& Wq = a.W_q.weight;  // (H, Dq)
  const Tensor& Wk = a.W_k.weight;  // (H, Dk)
  const Tensor& wv = a.w_v.weight;  // (1, H)
  const auto score = [&](mha::Index b, mha::Index i, mha::Index j) {
    long double s = 0;
    for (mha::Index h = 0; h < Wq.size(0); ++h) {
      long double feature = 0;
      for (mha::Index c = 0; c < q.size(2); ++c) feature += static_cast<long double>(Wq(h, c)) * q(b, i, c);
      for (mha::Index c = 0; c < k.size(2); ++c) feature += static_cast<long double>(Wk(h, c)) * k(b, j, c);
      s += wv(0, h) * std::tanh(feature);
    }
    return s;
  };
  return mha::attention_pooling(score, q.size(0), q.size(1), v, valid_lens, fill, dropped);
}

// The chain: the hidden features (Dq + Dk products), the w_v reduction over the hidden
// units, then softmax and weighted sum over Lk.
double output_budget(std::int64_t dq, std::int64_t dk, std::int64_t hidden, std::int64_t lk) {
  return float_chain_budget({dq + dk, hidden, lk, lk});
}
double weights_budget(std::int64_t dq, std::int64_t dk, std::int64_t hidden, std::int64_t lk) {
  return float_chain_budget({dq + dk, hidden, lk});
}

}  // namespace

TEST(AdditiveAttentionModule, Document004Example) {
  // AdditiveAttention(key_size=2, query_size=20, num_hiddens=8, dropout=0.1) in eval()
  // on queries normal(0, 1, (2, 1, 20)), keys ones(2, 10, 2), values arange(40)
  // reshaped (1, 10, 4) and repeated, valid_lens [2, 6]: equal keys, so the same
  // output as dot-product attention: [[2, 3, 4, 5]], [[10, 11, 12, 13]].
  Rng rng(0);
  AdditiveAttention attention(2, 20, 8, 0.1, rng);
  EXPECT_TRUE(attention.training());
  EXPECT_EQ(attention.fill, MaskFill::d2l);
  EXPECT_EQ(attention.dropout, 0.1);
  attention.eval();
  const Tensor queries = Tensor::randn({2, 1, 20}, rng);
  const Tensor keys = Tensor::full({2, 10, 2}, 1.0f);
  const Tensor values = Tensor::arange(40).reshape({1, 10, 4}).expand({2, 10, 4});
  const IndexTensor valid_lens = IndexTensor::from({2}, {2, 6});

  const Tensor out = attention.forward(queries, keys, values, valid_lens);
  ASSERT_EQ(out.shape(), (Shape{2, 1, 4}));
  const std::vector<long double> want_out = {2, 3, 4, 5, 10, 11, 12, 13};
  EXPECT_LE(relative_error(out.to_vector(), want_out), output_budget(20, 2, 8, 10));
  ASSERT_EQ(attention.attention_weights.shape(), (Shape{2, 1, 10}));
  std::vector<long double> want_weights(20, 0.0L);
  for (int j = 0; j < 2; ++j) want_weights[j] = 0.5L;
  for (int j = 0; j < 6; ++j) want_weights[10 + j] = 1.0L / 6;
  EXPECT_LE(relative_error(attention.attention_weights.to_vector(), want_weights),
            weights_budget(20, 2, 8, 10));
  for (int j = 2; j < 10; ++j) EXPECT_EQ(attention.attention_weights(0, 0, j), 0.0f);
  for (int j = 6; j < 10; ++j) EXPECT_EQ(attention.attention_weights(1, 0, j), 0.0f);

  // The same module, called again in eval(), gives the same (no dropout).
  EXPECT_EQ(attention.forward(queries, keys, values, valid_lens).to_vector(), out.to_vector());
}

TEST(AdditiveAttentionModule, ParametersInD2lNamesAndLayouts) {
  Rng rng(1);
  const AdditiveAttention attention(2, 20, 8, 0.1, rng);
  const attn::NamedParameters params = attention.named_parameters();
  // In any order (d2l registers W_k first, the header lists W_q first).
  std::vector<std::string> names = names_of(params);
  std::sort(names.begin(), names.end());
  EXPECT_THAT(names, ElementsAre("W_k.weight", "W_q.weight", "w_v.weight"));
  for (const auto& [name, t] : params) {
    const Shape want = name == "W_q.weight" ? Shape{8, 20} : name == "W_k.weight" ? Shape{8, 2} : Shape{1, 8};
    EXPECT_EQ(t.shape(), want) << name;
  }
  // nn.Linear(bias=False) each, initialised U(+-1/sqrt(in)).
  EXPECT_FALSE(attention.W_q.bias.defined());
  EXPECT_FALSE(attention.W_k.bias.defined());
  EXPECT_FALSE(attention.w_v.bias.defined());
  for (float w : attention.W_q.weight.to_vector()) EXPECT_LE(std::abs(w), 1 / std::sqrt(20.0));
  for (float w : attention.W_k.weight.to_vector()) EXPECT_LE(std::abs(w), 1 / std::sqrt(2.0));
  for (float w : attention.w_v.weight.to_vector()) EXPECT_LE(std::abs(w), 1 / std::sqrt(8.0));
}

TEST(AdditiveAttentionModule, MatchesOracle) {
  Rng rng(2);
  AdditiveAttention attention(3, 5, 7, 0.0, rng);
  const Tensor q = Tensor::randn({2, 4, 5}, rng);
  const Tensor k = Tensor::randn({2, 6, 3}, rng);
  const Tensor v = Tensor::randn({2, 6, 2}, rng);
  const std::vector<std::optional<IndexTensor>> lens = {
      std::nullopt, IndexTensor::from({2}, {6, 3}), IndexTensor::from({2, 4}, {1, 6, 0, 3, 2, 2, 5, 4})};
  for (MaskFill fill : {MaskFill::d2l, MaskFill::neg_inf}) {
    for (const auto& valid_lens : lens) {
      SCOPED_TRACE(std::string(fill == MaskFill::d2l ? "d2l" : "neg_inf") + ", valid_lens " +
                   (valid_lens ? valid_lens->shape_string() : "none"));
      attention.fill = fill;
      const Tensor out = attention.forward(q, k, v, valid_lens);
      const attn::test::OracleResult want = oracle(attention, q, k, v, valid_lens, fill);
      ASSERT_EQ(out.shape(), (Shape{2, 4, 2}));
      ASSERT_EQ(attention.attention_weights.shape(), (Shape{2, 4, 6}));
      for (float x : out.to_vector()) EXPECT_FALSE(std::isnan(x));
      EXPECT_LE(relative_error(out.to_vector(), want.out), output_budget(5, 3, 7, 6));
      EXPECT_LE(relative_error(attention.attention_weights.to_vector(), want.weights), weights_budget(5, 3, 7, 6));
    }
  }
  // A zero valid length: uniform over every key under d2l, zeros under neg_inf.
  const IndexTensor empty = IndexTensor::from({2}, {0, 6});
  attention.fill = MaskFill::d2l;
  attention.forward(q, k, v, empty);
  EXPECT_LE(relative_error(attention.attention_weights.select(0, 0).to_vector(),
                           std::vector<long double>(4 * 6, 1.0L / 6)),
            weights_budget(5, 3, 7, 6));
  attention.fill = MaskFill::neg_inf;
  const Tensor zeros = attention.forward(q, k, v, empty);
  for (float x : zeros.select(0, 0).to_vector()) EXPECT_EQ(x, 0.0f);
  for (float x : attention.attention_weights.select(0, 0).to_vector()) EXPECT_EQ(x, 0.0f);
}

TEST(AdditiveAttentionModule, DropoutOnlyInTraining) {
  Rng rng(3);
  AdditiveAttention attention(3, 4, 6, 0.5, rng);
  const Tensor q = Tensor::randn({2, 5, 4}, rng);
  const Tensor k = Tensor::randn({2, 8, 3}, rng);
  const Tensor v = Tensor::randn({2, 8, 3}, rng);
  const IndexTensor lens = IndexTensor::from({2}, {8, 6});
  const attn::test::OracleResult want = oracle(attention, q, k, v, lens, MaskFill::d2l);

  attention.eval();
  const Tensor eval = attention.forward(q, k, v, lens);
  EXPECT_LE(relative_error(eval.to_vector(), want.out), output_budget(4, 3, 6, 8));
  EXPECT_LE(relative_error(attention.attention_weights.to_vector(), want.weights), weights_budget(4, 3, 6, 8));

  attention.train();
  const Tensor train = attention.forward(q, k, v, lens);
  // d2l keeps attention_weights = masked_softmax(scores), before dropout: the eval
  // weights, in training too.
  EXPECT_LE(relative_error(attention.attention_weights.to_vector(), want.weights), weights_budget(4, 3, 6, 8));
  // The output is the weighted sum with dropped-out weights, each 0 or w / (1 - p):
  // the kept set that explains it must explain it within the output's budget.
  const Tensor dropped = mha::dropped_weights_explaining(train, want.weights, v, attention.dropout);
  const attn::test::OracleResult with_dropped = oracle(attention, q, k, v, lens, MaskFill::d2l, &dropped);
  EXPECT_LE(relative_error(train.to_vector(), with_dropped.out), output_budget(4, 3, 6, 8));
  EXPECT_GT(relative_error(train.to_vector(), eval.to_vector()), output_budget(4, 3, 6, 8))
      << "the training output dropped nothing";
  std::int64_t zeroed = 0, live = 0;
  const std::vector<float> kept = dropped.to_vector();
  for (std::size_t x = 0; x < kept.size(); ++x)
    if (want.weights[x] > 0) live += 1, zeroed += kept[x] == 0.0f ? 1 : 0;
  attn::test::expect_binomial_fraction(zeroed, live, attention.dropout, "dropped weights");
}

TEST(AdditiveAttentionModule, ErrorsNameTheArguments) {
  Rng rng(4);
  AdditiveAttention attention(2, 20, 8, 0.0, rng);
  const Tensor keys = Tensor::full({2, 10, 2}, 1.0f);
  const Tensor values = Tensor::zeros({2, 10, 4});
  EXPECT_THAT(error_of([&] { attention.forward(Tensor::zeros({2, 1, 19}), keys, values); }),
              HasSubstrs({"(2, 1, 19)", "(8, 20)"}));
  EXPECT_THAT(error_of([&] {
                attention.forward(Tensor::zeros({2, 1, 20}), keys, values, IndexTensor::from({2}, {2, 11}));
              }),
              HasSubstrs({"valid_lens", "11"}));
}
