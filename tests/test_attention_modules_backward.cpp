// AdditiveAttention::backward and DotProductAttention::backward (d2l's modules)
// against central differences of the long-double oracle: valid lengths, both
// fills, dropout in training (the forward's mask), parameter names, errors.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <optional>
#include <string>
#include <vector>

#include "attention_grad_check.hpp"
#include "attn/modules.hpp"
#include "grad_check.hpp"
#include "mha_oracle.hpp"
#include "test_util.hpp"

using attn::AdditiveAttention;
using attn::AttentionModuleGrads;
using attn::DotProductAttention;
using attn::IndexTensor;
using attn::Mask;
using attn::MaskFill;
using attn::Rng;
using attn::Tensor;
using attn::test::error_of;
using attn::test::HasSubstrs;
using attn::test::Index;
using attn::test::randn;

namespace {

// The valid_lens cases of d2l's modules: none, (B) with an empty batch, (B, Lq).
std::vector<std::optional<IndexTensor>> length_cases() {
  return {std::nullopt, IndexTensor::from({2}, {0, 3}), IndexTensor::from({2, 4}, {1, 5, 2, 3, 4, 0, 5, 2})};
}

attn::test::MaskParts parts_of(const std::optional<IndexTensor>& lens) {
  return {lens ? Mask::lengths(*lens) : Mask(), {}};
}

// Dropout's factor per weight of a d2l module, which returns the weights before
// dropout: the kept set is the one whose weights explain the output (mha_oracle.hpp).
attn::test::DropFn drop_explaining(const Tensor& out, const attn::test::OracleResult& exact,
                                   const Tensor& values, double p) {
  if (p == 0) return {};
  const Tensor dropped = attn::test::mha::dropped_weights_explaining(out, exact.weights, values, p);
  const long double keep = 1.0L / (1.0L - static_cast<long double>(p));
  return [dropped, keep](Index b, Index, Index i, Index j) { return dropped(b, i, j) != 0 ? keep : 0.0L; };
}

TEST(AdditiveAttentionBackward, EveryInputAndParameter) {
  for (double p : {0.0, 0.3})
    for (MaskFill fill : {MaskFill::d2l, MaskFill::neg_inf})
      for (const auto& lens : length_cases()) {
        const std::string label = "p = " + std::to_string(p) + (fill == MaskFill::d2l ? " d2l" : " neg_inf") +
                                  (lens ? " lengths " + lens->shape_string() : "");
        Rng rng(7);
        AdditiveAttention m(/*key_size=*/2, /*query_size=*/3, /*num_hiddens=*/5, p, rng);
        m.fill = fill;
        const Tensor q = randn({2, 4, 3}, 1), k = randn({2, 5, 2}, 2), v = randn({2, 5, 3}, 3),
                     dout = randn({2, 4, 3}, 4);
        const Tensor out = m.forward(q, k, v, lens);
        const AttentionModuleGrads g = m.backward(dout);
        EXPECT_EQ(attn::test::names_of(g.params), attn::test::names_of(m.named_parameters())) << label;

        const attn::test::MaskParts parts = parts_of(lens);
        const attn::test::OracleMask mask(parts, 2, 1, 4, 5);
        const attn::test::OracleResult exact = attn::test::oracle_additive(
            q, k, v, m.W_q.weight, m.W_k.weight, m.w_v.weight, mask.allowed, fill);
        attn::AdditiveGrads as_op;
        as_op.dq = g.query;
        as_op.dk = g.key;
        as_op.dv = g.value;
        as_op.dw_q = g.param("W_q.weight");
        as_op.dw_k = g.param("W_k.weight");
        as_op.dw_v = g.param("w_v.weight");
        attn::test::expect_additive_gradients(as_op, q, k, v, m.W_q.weight, m.W_k.weight, m.w_v.weight, dout,
                                              parts, fill, drop_explaining(out, exact, v, p), label);
      }
}

TEST(DotProductAttentionBackward, ScaledAndUnscaled) {
  for (double p : {0.0, 0.4})
    for (bool scaled : {true, false})
      for (const auto& lens : length_cases()) {
        const std::string label = "p = " + std::to_string(p) + (scaled ? " scaled" : " unscaled") +
                                  (lens ? " lengths " + lens->shape_string() : "");
        DotProductAttention m(p, scaled, /*seed=*/5);
        const Tensor q = randn({2, 4, 3}, 11), k = randn({2, 5, 3}, 12), v = randn({2, 5, 2}, 13),
                     dout = randn({2, 4, 2}, 14);
        const Tensor out = m.forward(q, k, v, lens);
        const AttentionModuleGrads g = m.backward(dout);
        EXPECT_TRUE(g.params.empty());

        const attn::test::MaskParts parts = parts_of(lens);
        const long double scale = scaled ? 1.0L / std::sqrt(3.0L) : 1.0L;
        const attn::test::OracleMask mask(parts, 2, 1, 4, 5);
        const attn::test::OracleResult exact =
            attn::test::oracle_attention(q.unsqueeze(1), k.unsqueeze(1), v.unsqueeze(1), scale, mask.allowed,
                                         attn::test::kNoBias, MaskFill::d2l);
        attn::AttentionGrads as_op;
        as_op.dq = g.query;
        as_op.dk = g.key;
        as_op.dv = g.value;
        attn::test::expect_sdpa_gradients(as_op, q, k, v, dout, parts, scale, MaskFill::d2l,
                                          drop_explaining(out, exact, v, p), label);
      }
}

TEST(AttentionModulesBackward, EvalModeHasNoDropoutAndEachForwardIsItsOwn) {
  DotProductAttention m(0.5, true, 3);
  m.eval();
  const Tensor q = randn({1, 3, 2}, 21), k = randn({1, 4, 2}, 22), v = randn({1, 4, 2}, 23),
               dout = randn({1, 3, 2}, 24);
  m.forward(q, k, v);
  const std::vector<float> first = m.backward(dout).query.to_vector();
  EXPECT_EQ(m.backward(dout).query.to_vector(), first)
      << "backward returns fresh gradients, nothing accumulates";
  m.forward(randn({1, 3, 2}, 25), k, v);
  EXPECT_NE(m.backward(dout).query.to_vector(), first) << "backward differentiates the last forward";
}

TEST(AttentionModulesBackward, ErrorsNameTheModule) {
  Rng rng(1);
  AdditiveAttention additive(2, 3, 4, 0.0, rng);
  EXPECT_THAT(error_of([&] {
                additive.backward(randn({1, 2, 3}, 1));
              }),
              HasSubstrs({"[AdditiveAttention.backward]", "call forward first"}));
  DotProductAttention dot(0.0);
  EXPECT_THAT(error_of([&] {
                dot.backward(randn({1, 2, 3}, 1));
              }),
              HasSubstrs({"[DotProductAttention.backward]", "call forward first"}));
  dot.forward(randn({1, 2, 3}, 2), randn({1, 4, 3}, 3), randn({1, 4, 5}, 4));
  EXPECT_THAT(error_of([&] {
                dot.backward(randn({1, 2, 3}, 5));
              }),
              HasSubstrs({"[scaled_dot_product_attention_backward]", "dout (1, 2, 3)", "(1, 2, 5)"}));
}

}  // namespace
