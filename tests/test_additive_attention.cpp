// attn::additive_attention: Bahdanau scores w_v^T tanh(W_q q + W_k k) against the
// long-double oracle, document 004's worked example, and the error paths.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "attn/ops.hpp"
#include "oracle.hpp"
#include "test_util.hpp"
#include "tolerance.hpp"

using attn::AdditiveOptions;
using attn::Align;
using attn::AttentionResult;
using attn::IndexTensor;
using attn::Mask;
using attn::MaskFill;
using attn::Rng;
using attn::Shape;
using attn::Tensor;
using attn::test::AllowedFn;
using attn::test::error_of;
using attn::test::expect_lse;
using attn::test::expect_no_nan;
using attn::test::HasSubstrs;
using attn::test::Index;
using attn::test::kAllowAll;
using attn::test::kInf;
using attn::test::kReferenceBudget;
using attn::test::OracleResult;
using attn::test::randn;
using attn::test::relative_error;
using ::testing::HasSubstr;

namespace {

// The reference rounds once from double; another kernel accumulates in float over
// the projection (Dq + Dk), the hidden units, then the keys.
double budget_for(const AttentionResult& r, Index Dq, Index Dk, Index hidden, Index Lk) {
  return r.kernel == attn::Kernel::reference ? kReferenceBudget
                                             : attn::test::float_chain_budget({Dq + Dk, hidden, Lk});
}

struct Problem {
  Tensor queries, keys, values, w_q, w_k, w_v;
};

Problem make_problem(Index B, Index Lq, Index Lk, Index Dq, Index Dk, Index Dv, Index hidden,
                     std::uint64_t seed) {
  return {randn({B, Lq, Dq}, seed),     randn({B, Lk, Dk}, seed + 1),
          randn({B, Lk, Dv}, seed + 2), randn({hidden, Dq}, seed + 3),
          randn({hidden, Dk}, seed + 4), randn({1, hidden}, seed + 5)};
}

void expect_matches_oracle(const Problem& p, AdditiveOptions options, const AllowedFn& allowed,
                           const std::string& label) {
  options.need_weights = true;
  const AttentionResult r =
      attn::additive_attention(p.queries, p.keys, p.values, p.w_q, p.w_k, p.w_v, options);
  const OracleResult want = attn::test::oracle_additive(p.queries, p.keys, p.values, p.w_q, p.w_k,
                                                        p.w_v, allowed, options.fill);
  const Index B = p.queries.size(0), Lq = p.queries.size(1), Lk = p.keys.size(1);
  const double budget = budget_for(r, p.queries.size(2), p.keys.size(2), p.w_q.size(0), Lk);
  EXPECT_EQ(r.out.shape(), (Shape{B, Lq, p.values.size(2)})) << label;
  EXPECT_EQ(r.weights.shape(), (Shape{B, Lq, Lk})) << label;
  EXPECT_EQ(r.lse.shape(), (Shape{B, Lq})) << label;
  expect_no_nan(r.out.to_vector(), label + " out");
  expect_no_nan(r.weights.to_vector(), label + " weights");
  EXPECT_LE(relative_error(r.out.to_vector(), want.out), budget) << label << ": out";
  EXPECT_LE(relative_error(r.weights.to_vector(), want.weights), budget) << label << ": weights";
  expect_lse(r.lse, want.lse, budget, label);

  // The same without weights.
  options.need_weights = false;
  const AttentionResult plain =
      attn::additive_attention(p.queries, p.keys, p.values, p.w_q, p.w_k, p.w_v, options);
  EXPECT_LE(relative_error(plain.out.to_vector(), want.out), budget) << label << ": out (no weights)";
}

void expect_error(const std::string& msg, std::vector<std::string> parts) {
  parts.push_back("[additive_attention]");
  EXPECT_THAT(msg, HasSubstrs(parts));
}

}  // namespace

TEST(AdditiveAttention, MatchesOracleWithoutMask) {
  expect_matches_oracle(make_problem(2, 3, 5, 4, 3, 6, 8, 10), {}, kAllowAll, "2x3x5");
  expect_matches_oracle(make_problem(1, 1, 1, 1, 1, 1, 1, 20), {}, kAllowAll, "all ones");
  expect_matches_oracle(make_problem(3, 7, 65, 5, 9, 2, 16, 30), {}, kAllowAll, "Lk 65");
}

TEST(AdditiveAttention, MatchesOracleWithMasks) {
  const Problem p = make_problem(2, 4, 6, 5, 3, 4, 8, 40);
  for (MaskFill fill : {MaskFill::neg_inf, MaskFill::d2l}) {
    const std::string f = fill == MaskFill::d2l ? " d2l" : " neg_inf";
    AdditiveOptions o;
    o.fill = fill;
    o.mask = Mask::lengths(std::vector<std::int64_t>{2, 6});
    expect_matches_oracle(p, o, [](Index b, Index, Index, Index j) { return j < (b ? 6 : 2); },
                          "lengths 1-D" + f);
    const IndexTensor per_query = IndexTensor::from({2, 4}, {1, 0, 3, 6, 6, 5, 2, 4});
    o.mask = Mask::lengths(per_query);
    expect_matches_oracle(
        p, o, [&](Index b, Index, Index i, Index j) { return j < per_query(b, i); }, "lengths 2-D" + f);
    o.mask = Mask::causal(Align::bottom_right) & Mask::lengths(std::vector<std::int64_t>{5, 3});
    expect_matches_oracle(
        p, o, [](Index b, Index, Index i, Index j) { return j <= i + 2 && j < (b ? 3 : 5); },
        "causal & lengths" + f);
  }
}

TEST(AdditiveAttention, StridedInputsMatchContiguous) {
  const Problem p = make_problem(2, 3, 5, 4, 3, 6, 8, 50);
  Problem t = p;
  t.queries = p.queries.transpose(1, 2).contiguous().transpose(1, 2);  // same values, strided
  t.keys = p.keys.permute({1, 0, 2}).contiguous().permute({1, 0, 2});
  t.w_q = p.w_q.transpose(0, 1).contiguous().transpose(0, 1);
  ASSERT_FALSE(t.queries.is_contiguous());
  ASSERT_FALSE(t.w_q.is_contiguous());
  expect_matches_oracle(t, {}, kAllowAll, "strided");
  const AttentionResult a = attn::additive_attention(p.queries, p.keys, p.values, p.w_q, p.w_k, p.w_v);
  const AttentionResult b = attn::additive_attention(t.queries, t.keys, t.values, t.w_q, t.w_k, t.w_v);
  EXPECT_LE(relative_error(b.out.to_vector(), a.out.to_vector()), kReferenceBudget);
}

TEST(AdditiveAttention, Document004WorkedExample) {
  // queries normal(0, 1, (2, 1, 20)); keys ones(2, 10, 2);
  // values arange(40).reshape(1, 10, 4).repeat(2, 1, 1); valid_lens [2, 6];
  // AdditiveAttention(key_size=2, query_size=20, num_hiddens=8).
  const Tensor queries = randn({2, 1, 20}, 2024);
  const Tensor keys = Tensor::full({2, 10, 2}, 1.0f);
  const Tensor repeated = Tensor::arange(40).reshape({1, 10, 4}).expand({2, 10, 4});
  const Tensor w_q = randn({8, 20}, 2025), w_k = randn({8, 2}, 2026), w_v = randn({1, 8}, 2027);
  AdditiveOptions o;
  o.mask = Mask::lengths(IndexTensor::from({2}, {2, 6}));
  o.need_weights = true;
  // Identical keys give equal scores, so the weights are uniform over the valid
  // keys and the output is the mean of their values.
  const std::vector<long double> out_want = {2, 3, 4, 5, 10, 11, 12, 13};
  std::vector<long double> weights_want(20, 0.0L);
  for (int j = 0; j < 2; ++j) weights_want[j] = 0.5L;
  for (int j = 0; j < 6; ++j) weights_want[10 + j] = 1.0L / 6;
  for (const Tensor& values : {repeated, repeated.contiguous()}) {
    for (MaskFill fill : {MaskFill::neg_inf, MaskFill::d2l}) {
      o.fill = fill;
      const AttentionResult r = attn::additive_attention(queries, keys, values, w_q, w_k, w_v, o);
      const double budget = budget_for(r, 20, 2, 8, 10);
      EXPECT_EQ(r.out.shape(), (Shape{2, 1, 4}));
      EXPECT_LE(relative_error(r.out.to_vector(), out_want), budget)
          << "want [[[2, 3, 4, 5]], [[10, 11, 12, 13]]], got " << attn::to_string(r.out);
      EXPECT_EQ(r.weights.shape(), (Shape{2, 1, 10}));
      EXPECT_LE(relative_error(r.weights.to_vector(), weights_want), budget)
          << "got " << attn::to_string(r.weights);
      for (int j = 2; j < 10; ++j) EXPECT_EQ(r.weights(0, 0, j), 0.0f) << "key " << j;
      for (int j = 6; j < 10; ++j) EXPECT_EQ(r.weights(1, 0, j), 0.0f) << "key " << j;
    }
  }
}

TEST(AdditiveAttention, FullyMaskedRowIsZero) {
  const Problem p = make_problem(2, 2, 4, 3, 3, 2, 4, 60);
  AdditiveOptions o;
  o.mask = Mask::lengths(std::vector<std::int64_t>{0, 3});
  o.need_weights = true;
  const AttentionResult r = attn::additive_attention(p.queries, p.keys, p.values, p.w_q, p.w_k, p.w_v, o);
  for (float x : r.out.select(0, 0).to_vector()) EXPECT_EQ(x, 0.0f);
  for (float x : r.weights.select(0, 0).to_vector()) EXPECT_EQ(x, 0.0f);
  for (float x : r.lse.select(0, 0).to_vector()) EXPECT_EQ(x, -kInf);
  expect_matches_oracle(p, o, [](Index b, Index, Index, Index j) { return j < (b ? 3 : 0); },
                        "empty rows");
}

TEST(AdditiveAttention, Dropout) {
  const Problem p = make_problem(2, 3, 6, 4, 3, 5, 8, 70);
  AdditiveOptions o;
  o.dropout = {0.0, 99};
  expect_matches_oracle(p, o, kAllowAll, "p = 0 is the identity");
  o.dropout = {1.0, 99};
  const AttentionResult all = attn::additive_attention(p.queries, p.keys, p.values, p.w_q, p.w_k, p.w_v, o);
  for (float x : all.out.to_vector()) EXPECT_EQ(x, 0.0f) << "p = 1 drops everything";

  // Document 004's AdditiveAttention(dropout=0.1), over enough weights (16 x 16 per
  // batch) that six binomial standard deviations of the dropped fraction stay below p.
  const Problem big = make_problem(4, 16, 16, 4, 3, 5, 8, 71);
  const double rate = 0.1;
  o.dropout = {rate, 99};
  o.need_weights = true;
  const AttentionResult a =
      attn::additive_attention(big.queries, big.keys, big.values, big.w_q, big.w_k, big.w_v, o);
  const AttentionResult b =
      attn::additive_attention(big.queries, big.keys, big.values, big.w_q, big.w_k, big.w_v, o);
  EXPECT_EQ(a.out.to_vector(), b.out.to_vector()) << "same seed, same result";
  const OracleResult want =
      attn::test::oracle_additive(big.queries, big.keys, big.values, big.w_q, big.w_k, big.w_v);
  const double budget = budget_for(a, 4, 3, 8, 16);
  const std::vector<float> w = a.weights.to_vector();
  std::vector<float> kept;
  std::vector<long double> kept_want;
  for (std::size_t n = 0; n < w.size(); ++n)
    if (w[n] != 0.0f) {
      kept.push_back(w[n]);
      kept_want.push_back(want.weights[n] / (1 - rate));
    }
  EXPECT_LE(relative_error(kept, kept_want), budget) << "kept weights are w / (1 - p)";
  attn::test::expect_binomial_fraction(static_cast<std::int64_t>(w.size() - kept.size()),
                                       static_cast<std::int64_t>(w.size()), rate, "dropped weights");
  // The output is the dropped-out weights times the values.
  const Tensor dropped = a.weights.unsqueeze(1);  // (B, 1, Lq, Lk)
  const OracleResult with_dropped = attn::test::oracle_attend(
      4, 1, 16, 16, big.values.unsqueeze(1), [](Index, Index, Index, Index) { return 0.0L; }, kAllowAll,
      attn::test::kNoBias, MaskFill::neg_inf, &dropped);
  EXPECT_LE(relative_error(a.out.to_vector(), with_dropped.out), budget);

  // weights_before_dropout: the softmax comes back (d2l's attention_weights) while the
  // output still uses the same dropped-out weights.
  o.weights_before_dropout = true;
  const AttentionResult before =
      attn::additive_attention(big.queries, big.keys, big.values, big.w_q, big.w_k, big.w_v, o);
  EXPECT_LE(relative_error(before.weights.to_vector(), want.weights), budget) << "the softmax, not dropped";
  EXPECT_LE(relative_error(before.out.to_vector(), with_dropped.out), budget);
  EXPECT_GT(relative_error(before.out.to_vector(), want.out), budget) << "the output did not drop anything";
  expect_lse(before.lse, want.lse, budget, "weights before dropout");
}

TEST(AdditiveAttentionErrors, WidthMismatches) {
  const Tensor queries = Tensor::zeros({2, 1, 20}), keys = Tensor::zeros({2, 10, 2}),
               values = Tensor::zeros({2, 10, 4});
  const Tensor w_q = Tensor::zeros({8, 20}), w_k = Tensor::zeros({8, 2}), w_v = Tensor::zeros({1, 8});
  expect_error(error_of([&] {
                 attn::additive_attention(queries, keys, values, Tensor::zeros({8, 19}), w_k, w_v);
               }),
               {"w_q", "w_q (8, 19)", "queries (2, 1, 20)"});
  expect_error(error_of([&] {
                 attn::additive_attention(queries, keys, values, w_q, Tensor::zeros({8, 3}), w_v);
               }),
               {"w_k", "w_k (8, 3)", "keys (2, 10, 2)"});
  expect_error(error_of([&] {
                 attn::additive_attention(queries, keys, values, w_q, Tensor::zeros({7, 2}), w_v);
               }),
               {"w_k", "w_k (7, 2)", "w_q (8, 20)"});
  expect_error(error_of([&] {
                 attn::additive_attention(queries, keys, values, w_q, w_k, Tensor::zeros({1, 7}));
               }),
               {"w_v", "w_v (1, 7)"});
  expect_error(error_of([&] {
                 attn::additive_attention(queries, keys, values, w_q, w_k, Tensor::zeros({2, 8}));
               }),
               {"w_v", "w_v (2, 8)"});
}

TEST(AdditiveAttentionErrors, ShapeMismatches) {
  const Tensor queries = Tensor::zeros({2, 1, 20}), keys = Tensor::zeros({2, 10, 2}),
               values = Tensor::zeros({2, 10, 4});
  const Tensor w_q = Tensor::zeros({8, 20}), w_k = Tensor::zeros({8, 2}), w_v = Tensor::zeros({1, 8});
  expect_error(error_of([&] {
                 attn::additive_attention(Tensor::zeros({1, 20}), keys, values, w_q, w_k, w_v);
               }),
               {"queries", "(1, 20)"});
  expect_error(error_of([&] {
                 attn::additive_attention(queries, keys, values, Tensor::zeros({8, 20, 1}), w_k, w_v);
               }),
               {"w_q", "(8, 20, 1)"});
  expect_error(error_of([&] {
                 attn::additive_attention(queries, Tensor::zeros({3, 10, 2}), values, w_q, w_k, w_v);
               }),
               {"batch", "keys (3, 10, 2)", "queries (2, 1, 20)"});
  expect_error(error_of([&] {
                 attn::additive_attention(queries, keys, Tensor::zeros({2, 9, 4}), w_q, w_k, w_v);
               }),
               {"length", "values (2, 9, 4)", "keys (2, 10, 2)"});
  AdditiveOptions o;
  o.mask = Mask::lengths(std::vector<std::int64_t>{2, 6, 1});
  expect_error(error_of([&] { attn::additive_attention(queries, keys, values, w_q, w_k, w_v, o); }),
               {"valid_lens", "(3)"});
  o.mask = Mask::lengths(std::vector<std::int64_t>{2, 11});
  expect_error(error_of([&] { attn::additive_attention(queries, keys, values, w_q, w_k, w_v, o); }),
               {"valid_lens", "11"});
  AdditiveOptions d;
  d.dropout = {2.0, 0};
  expect_error(error_of([&] { attn::additive_attention(queries, keys, values, w_q, w_k, w_v, d); }),
               {"dropout", "2"});
}
