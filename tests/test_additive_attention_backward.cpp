// attn::additive_attention_backward against central differences of the
// long-double additive oracle: every input and weight, masks and bias gradients,
// both fills, dropout, strides and the error paths.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "attention_grad_check.hpp"
#include "attn/backward.hpp"
#include "attn/ops.hpp"
#include "grad_check.hpp"
#include "oracle.hpp"
#include "test_util.hpp"

using attn::AdditiveGrads;
using attn::AdditiveOptions;
using attn::AttentionResult;
using attn::BackwardOptions;
using attn::IndexTensor;
using attn::Kernel;
using attn::Mask;
using attn::MaskFill;
using attn::Rng;
using attn::Tensor;
using attn::test::error_of;
using attn::test::HasSubstrs;
using attn::test::randn;

namespace {

struct Inputs {
  Tensor queries, keys, values, w_q, w_k, w_v, dout;
};

// B = 2, Lq = 4, Lk = 5, Dq = 3, Dk = 2, Dv = 3, num_hiddens = 6: weights ~ N(0, 1/2) so
// that tanh is neither linear nor saturated.
Inputs random_inputs(std::uint64_t seed) {
  Inputs x{randn({2, 4, 3}, seed),    randn({2, 5, 2}, seed + 1), randn({2, 5, 3}, seed + 2),
           randn({6, 3}, seed + 3),   randn({6, 2}, seed + 4),    randn({1, 6}, seed + 5),
           randn({2, 4, 3}, seed + 6)};
  for (Tensor* w : {&x.w_q, &x.w_k, &x.w_v}) w->for_each([](float& v) { v *= 0.7f; });
  return x;
}

// The mask as structure plus bias terms, and the forward's other options.
struct Case {
  std::string label{};
  Mask structure{};
  std::vector<Tensor> biases{};
  attn::Dropout dropout{};
  MaskFill fill = MaskFill::neg_inf;
};

AdditiveGrads check(const Case& c, const Inputs& x) {
  const attn::test::MaskParts parts{c.structure, c.biases};
  AdditiveOptions o;
  o.mask = parts.full();
  o.dropout = c.dropout;
  o.fill = c.fill;
  o.need_weights = true;  // the applied weights say which ones dropout kept
  const AttentionResult r = attn::additive_attention(x.queries, x.keys, x.values, x.w_q, x.w_k, x.w_v, o);
  const AdditiveGrads g =
      attn::additive_attention_backward(x.queries, x.keys, x.values, x.w_q, x.w_k, x.w_v, r.out, r.lse,
                                        x.dout, o, BackwardOptions{.need_bias_grad = true});
  attn::test::expect_additive_gradients(
      g, x.queries, x.keys, x.values, x.w_q, x.w_k, x.w_v, x.dout, parts, c.fill,
      attn::test::drop_from_applied(r.weights.unsqueeze(1), c.dropout.p), c.label);
  return g;
}

AdditiveGrads check(const Case& c, std::uint64_t seed = 1) { return check(c, random_inputs(seed)); }

TEST(AdditiveBackward, EveryInputAndWeight) { check({.label = "no mask"}); }

TEST(AdditiveBackward, ValidLengthsUnderBothFills) {
  for (MaskFill fill : {MaskFill::neg_inf, MaskFill::d2l}) {
    const std::string f = fill == MaskFill::d2l ? " d2l" : " neg_inf";
    check({.label = "lengths (B)" + f, .structure = Mask::lengths({0, 3}), .fill = fill});
    check({.label = "lengths (B, Lq)" + f,
           .structure = Mask::lengths(IndexTensor::from({2, 4}, {1, 5, 0, 2, 3, 4, 5, 1})),
           .fill = fill});
  }
}

TEST(AdditiveBackward, StructuralAndBiasTerms) {
  Rng rng(2);
  check({.label = "causal & dense & bias",
         .structure = Mask::causal(attn::Align::bottom_right) &
                      Mask::block(attn::test::random_bools({2, 1, 1, 5}, 0.2, rng)),
         .biases = {attn::test::random_bias({4, 5}, 0.1, rng),
                    attn::test::random_bias({2, 1, 4, 5}, 0.0, rng)}});
}

TEST(AdditiveBackward, DropoutRegeneratesTheForwardsMask) {
  check({.label = "dropout", .structure = Mask::lengths({4, 5}), .dropout = {0.4, 77}});
}

TEST(AdditiveBackward, EveryRowMaskedGivesZeros) {
  const AdditiveGrads g = check({.label = "all masked", .structure = Mask::lengths({0, 0})});
  for (const Tensor& t : {g.dq, g.dk, g.dv, g.dw_q, g.dw_k, g.dw_v})
    for (float v : t.to_vector()) ASSERT_EQ(v, 0.0f);
}

TEST(AdditiveBackward, StridedInputs) {
  Inputs x = random_inputs(3);
  x.queries = randn({3, 2, 4}, 31).permute({1, 2, 0});  // (2, 4, 3)
  x.keys = randn({2, 7, 2}, 32).slice(1, 1, 6);
  x.w_q = randn({3, 6}, 33).transpose(0, 1);
  x.dout = randn({4, 2, 3}, 34).transpose(0, 1);
  check({.label = "strided"}, x);
}

TEST(AdditiveBackward, ErrorsNameTheArgumentAndShapes) {
  const Inputs x = random_inputs(4);
  const AttentionResult r = attn::additive_attention(x.queries, x.keys, x.values, x.w_q, x.w_k, x.w_v);
  const auto backward = [&](const Tensor& w_v, const Tensor& out, const Tensor& lse, const Tensor& dout) {
    return error_of([&] {
      attn::additive_attention_backward(x.queries, x.keys, x.values, x.w_q, x.w_k, w_v, out, lse, dout);
    });
  };
  EXPECT_THAT(
      backward(x.w_v, r.out, r.lse, randn({2, 4, 2}, 1)),
      HasSubstrs({"[additive_attention_backward]", "dout (2, 4, 2)", "(2, 4, 3)", "queries (2, 4, 3)"}));
  EXPECT_THAT(backward(x.w_v, r.out, Tensor::zeros({2, 5}), x.dout), HasSubstrs({"lse (2, 5)", "(2, 4)"}));
  EXPECT_THAT(backward(x.w_v, Tensor::zeros({2, 4}), r.lse, x.dout), HasSubstrs({"out (2, 4)", "(2, 4, 3)"}));
  EXPECT_THAT(backward(randn({1, 5}, 2), r.out, r.lse, x.dout),
              HasSubstrs({"w_v (1, num_hiddens)", "w_v (1, 5)"}));
  EXPECT_THAT(error_of([&] {
                attn::additive_attention_backward(x.queries, x.keys, x.values, x.w_q, x.w_k, x.w_v, r.out,
                                                  r.lse, x.dout, {},
                                                  BackwardOptions{.kernel = Kernel::fused});
              }),
              HasSubstrs({"no fused kernel"}));
}

}  // namespace
