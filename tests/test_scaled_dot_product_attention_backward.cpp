// attn::scaled_dot_product_attention_backward (and dot_product_attention_backward)
// against central differences of the long-double oracle: every mask kind, bias
// gradients, GQA ratios, Dk != Dv, dropout, d2l's fill, strides, fully masked rows,
// and the error paths.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <optional>
#include <string>
#include <vector>

#include "attention_grad_check.hpp"
#include "attn/backward.hpp"
#include "attn/ops.hpp"
#include "grad_check.hpp"
#include "oracle.hpp"
#include "test_util.hpp"

using attn::Align;
using attn::AttentionGrads;
using attn::AttentionResult;
using attn::BackwardOptions;
using attn::Dropout;
using attn::IndexTensor;
using attn::Kernel;
using attn::Mask;
using attn::MaskFill;
using attn::Rng;
using attn::SdpaOptions;
using attn::Shape;
using attn::Tensor;
using attn::test::central_differences;
using attn::test::error_of;
using attn::test::FdGradient;
using attn::test::HasSubstrs;
using attn::test::Index;
using attn::test::LTensor;
using attn::test::randn;
using attn::test::random_bias;
using attn::test::random_bools;
using attn::test::widen;
using attn::test::widen_values;

namespace {

struct Sizes {
  Index B = 2, Hq = 2, Hkv = 2, Lq = 5, Lk = 7, Dk = 4, Dv = 3;
};

// One gradient check: the mask as its structural and boolean terms plus its bias
// terms (whose gradients are checked too), and the forward's other options.
struct Case {
  std::string label;
  Sizes n;
  Mask structure;
  std::vector<Tensor> biases;
  std::optional<double> scale;
  Dropout dropout;
  MaskFill fill = MaskFill::neg_inf;
  bool three_d = false;  // (B, L, D) inputs, one head
};

struct Inputs {
  Tensor q, k, v, dout;
};

Inputs random_inputs(const Case& c, std::uint64_t seed) {
  const Sizes& n = c.n;
  const auto shape = [&](Index h, Index l, Index d) {
    return c.three_d ? Shape{n.B, l, d} : Shape{n.B, h, l, d};
  };
  return {randn(shape(n.Hq, n.Lq, n.Dk), seed), randn(shape(n.Hkv, n.Lk, n.Dk), seed + 1),
          randn(shape(n.Hkv, n.Lk, n.Dv), seed + 2), randn(shape(n.Hq, n.Lq, n.Dv), seed + 3)};
}

SdpaOptions options_of(const Case& c) {
  SdpaOptions o;
  o.mask = c.structure;
  for (const Tensor& b : c.biases) o.mask &= Mask::bias(b);
  o.scale = c.scale;
  o.dropout = c.dropout;
  o.fill = c.fill;
  o.kernel = Kernel::reference;
  o.need_weights = true;  // the applied weights tell the test which ones dropout kept
  return o;
}

// Runs the forward and the backward on x, then checks dq, dk, dv and every bias
// gradient against central differences of the long-double oracle with the same
// mask and the same kept weights. Returns the gradients.
AttentionGrads check_backward(const Case& c, const Inputs& x) {
  const SdpaOptions options = options_of(c);
  const AttentionResult r = attn::scaled_dot_product_attention(x.q, x.k, x.v, options);
  const AttentionGrads g = attn::scaled_dot_product_attention_backward(
      x.q, x.k, x.v, r.out, r.lse, x.dout, options, BackwardOptions{.need_bias_grad = true});
  EXPECT_EQ(g.kernel, Kernel::reference) << c.label;
  const long double scale =
      c.scale ? static_cast<long double>(*c.scale) : 1.0L / std::sqrt(static_cast<long double>(x.q.size(-1)));
  attn::test::expect_sdpa_gradients(
      g, x.q, x.k, x.v, x.dout, {c.structure, c.biases}, scale, c.fill,
      attn::test::drop_from_applied(attn::test::heads_of(r.weights), c.dropout.p), c.label);
  return g;
}

AttentionGrads check_backward(const Case& c, std::uint64_t seed = 1) {
  return check_backward(c, random_inputs(c, seed));
}

Case with_mask(std::string label, Mask structure, Sizes n = {}) {
  Case c;
  c.label = std::move(label);
  c.structure = std::move(structure);
  c.n = n;
  return c;
}

// ---- shapes and scales ----------------------------------------------------------------

TEST(SdpaBackward, NoMaskDkDiffersFromDv) { check_backward(with_mask("no mask", Mask())); }

TEST(SdpaBackward, ThreeDimensionalInputsAreOneHead) {
  Case c = with_mask("3-D", Mask::causal(), {.B = 3, .Hq = 1, .Hkv = 1, .Lq = 6, .Lk = 6, .Dk = 5, .Dv = 2});
  c.three_d = true;
  const AttentionGrads g = check_backward(c);
  EXPECT_EQ(g.dq.shape(), (Shape{3, 6, 5}));
  EXPECT_EQ(g.dv.shape(), (Shape{3, 6, 2}));
}

TEST(SdpaBackward, ExplicitScale) {
  Case c = with_mask("scale 0.7", Mask());
  c.scale = 0.7;
  check_backward(c);
}

TEST(SdpaBackward, OneQueryAndOneKey) {
  check_backward(
      with_mask("Lq = 1", Mask(), {.B = 2, .Hq = 2, .Hkv = 1, .Lq = 1, .Lk = 6, .Dk = 3, .Dv = 4}));
  check_backward(
      with_mask("Lk = 1", Mask(), {.B = 2, .Hq = 2, .Hkv = 2, .Lq = 4, .Lk = 1, .Dk = 3, .Dv = 4}));
}

TEST(SdpaBackward, DotProductAttentionIsUnscaled) {
  const Case c = with_mask("unscaled", Mask::causal());
  const Inputs x = random_inputs(c, 5);
  SdpaOptions o = options_of(c);
  o.scale.reset();
  const AttentionResult r = attn::dot_product_attention(x.q, x.k, x.v, o);
  const AttentionGrads unscaled = attn::dot_product_attention_backward(
      x.q, x.k, x.v, r.out, r.lse, x.dout, o, BackwardOptions{.kernel = Kernel::reference});
  Case scaled = c;
  scaled.scale = 1.0;
  const AttentionGrads want = check_backward(scaled, x);
  EXPECT_EQ(unscaled.dq.to_vector(), want.dq.to_vector());
  EXPECT_EQ(unscaled.dk.to_vector(), want.dk.to_vector());
  EXPECT_EQ(unscaled.dv.to_vector(), want.dv.to_vector());
}

// ---- every mask kind ----------------------------------------------------------------------

TEST(SdpaBackward, CausalTopLeft) {
  check_backward(with_mask("causal top-left", Mask::causal(Align::top_left)));
}

TEST(SdpaBackward, CausalBottomRightWithMoreQueriesThanKeysHasEmptyRows) {
  // Query i sees keys j <= i - 2: rows 0 and 1 see nothing.
  check_backward(with_mask("causal bottom-right", Mask::causal(Align::bottom_right),
                           {.B = 2, .Hq = 2, .Hkv = 2, .Lq = 7, .Lk = 5, .Dk = 4, .Dv = 3}));
  check_backward(with_mask("causal bottom-right, Lq < Lk", Mask::causal(Align::bottom_right)));
}

TEST(SdpaBackward, LengthsOneAndTwoDimensional) {
  check_backward(with_mask("lengths (B) with a zero", Mask::lengths({0, 4})));
  check_backward(
      with_mask("lengths (B, Lq)", Mask::lengths(IndexTensor::from({2, 5}, {1, 7, 3, 0, 5, 2, 2, 6, 4, 7}))));
}

TEST(SdpaBackward, SlidingWindowBothAlignments) {
  check_backward(with_mask("window top-left", Mask::sliding_window(2, 1)));
  check_backward(with_mask("window bottom-right", Mask::sliding_window(1, 0, Align::bottom_right)));
}

TEST(SdpaBackward, DenseKeepAndBlockBroadcast) {
  Rng rng(3);
  check_backward(with_mask("dense keep (Lq, Lk)", Mask::keep(random_bools({5, 7}, 0.7, rng))));
  check_backward(with_mask("dense block (B, 1, 1, Lk)", Mask::block(random_bools({2, 1, 1, 7}, 0.3, rng))));
  check_backward(with_mask("dense keep (B, H, Lq, Lk)", Mask::keep(random_bools({2, 2, 5, 7}, 0.6, rng))));
}

TEST(SdpaBackward, BiasGradientsInTheBiasShapes) {
  Rng rng(4);
  Case c = with_mask("biases", Mask());
  c.biases = {random_bias({2, 2, 5, 7}, 0.0, rng),  // full
              random_bias({5, 7}, 0.0, rng),        // broadcast over B and H
              random_bias({2, 1, 1, 7}, 0.0, rng),  // a float padding mask
              random_bias({2, 1, 1}, 0.0, rng)};    // (H, 1, 1): one value per head
  const AttentionGrads g = check_backward(c);
  ASSERT_EQ(g.dbias.size(), 4u);
  EXPECT_EQ(g.dbias[1].shape(), (Shape{5, 7}));
  EXPECT_EQ(g.dbias[3].shape(), (Shape{2, 1, 1}));
}

TEST(SdpaBackward, MinusInfinityBiasEntriesGetZeroGradient) {
  Rng rng(5);
  Case c = with_mask("-inf bias", Mask());
  c.biases = {random_bias({2, 2, 5, 7}, 0.3, rng)};
  const AttentionGrads g = check_backward(c);
  const std::vector<float> bias = c.biases[0].to_vector(), grad = g.dbias[0].to_vector();
  for (std::size_t n = 0; n < bias.size(); ++n) {
    if (!std::isinf(bias[n])) continue;
    EXPECT_EQ(grad[n], 0.0f) << n;
  }
}

TEST(SdpaBackward, CombinedTerms) {
  Rng rng(6);
  Case c = with_mask("causal & lengths & window & dense & bias",
                     Mask::causal(Align::bottom_right) & Mask::lengths({6, 3}) & Mask::sliding_window(3, 0) &
                         Mask::block(random_bools({1, 2, 1, 7}, 0.2, rng)));
  c.biases = {random_bias({5, 7}, 0.1, rng), random_bias({2, 1, 5, 1}, 0.0, rng)};
  check_backward(c);
}

TEST(SdpaBackward, EveryRowMaskedGivesZeroGradientsNotNaN) {
  Case c = with_mask("all masked", Mask::lengths({0, 0}));
  Rng rng(7);
  c.biases = {random_bias({5, 7}, 0.0, rng)};
  const AttentionGrads g = check_backward(c);
  for (const Tensor& t : {g.dq, g.dk, g.dv, g.dbias[0]})
    for (float x : t.to_vector()) ASSERT_EQ(x, 0.0f);
}

// ---- d2l's fill: a row with nothing allowed is uniform, so dv flows there -------------

TEST(SdpaBackward, D2lFillKeepsUniformRows) {
  Case c = with_mask("d2l fill, lengths (B, Lq) with zeros",
                     Mask::lengths(IndexTensor::from({2, 5}, {0, 7, 3, 0, 5, 2, 0, 6, 4, 7})));
  c.fill = MaskFill::d2l;
  const AttentionGrads g = check_backward(c);
  // Row (0, 0, 0) saw no key: a uniform average, which dv receives.
  float total = 0;
  for (float x : g.dv.to_vector()) total += std::abs(x);
  EXPECT_GT(total, 0.0f);
}

// ---- GQA, dropout, strides ------------------------------------------------------------------

TEST(SdpaBackward, GroupedQueryAttentionSumsSharedHeads) {
  for (Index group : {2, 3, 6}) {
    const Sizes n{.B = 2, .Hq = 6, .Hkv = 6 / group, .Lq = 4, .Lk = 5, .Dk = 3, .Dv = 2};
    check_backward(with_mask("GQA group " + std::to_string(group), Mask::causal(Align::bottom_right), n));
  }
}

TEST(SdpaBackward, DropoutRegeneratesTheForwardsMask) {
  for (double p : {0.3, 0.6}) {
    Case c = with_mask("dropout p = " + std::to_string(p), Mask::causal(),
                       {.B = 2, .Hq = 4, .Hkv = 2, .Lq = 6, .Lk = 6, .Dk = 3, .Dv = 4});
    c.dropout = {p, 1234};
    check_backward(c);
  }
  Case all = with_mask("dropout p = 1", Mask());
  all.dropout = {1.0, 9};
  const AttentionGrads g = check_backward(all);
  for (float x : g.dv.to_vector()) ASSERT_EQ(x, 0.0f);
}

TEST(SdpaBackward, DropoutSeedMatters) {
  // The same inputs with another seed drop other weights: another dv.
  Case c = with_mask("dropout", Mask());
  c.dropout = {0.5, 1};
  const Inputs x = random_inputs(c, 11);
  const AttentionGrads a = check_backward(c, x);
  c.dropout.seed = 2;
  const AttentionGrads b = check_backward(c, x);
  EXPECT_NE(a.dv.to_vector(), b.dv.to_vector());
}

TEST(SdpaBackward, StridedInputsAndOutputs) {
  const Case c =
      with_mask("strided", Mask::causal(), {.B = 2, .Hq = 4, .Hkv = 2, .Lq = 5, .Lk = 6, .Dk = 3, .Dv = 3});
  // q and dout as heads of (B, L, H * D) buffers, k transposed in memory, v a slice.
  Inputs x;
  x.q = randn({2, 5, 4 * 3}, 21).reshape({2, 5, 4, 3}).permute({0, 2, 1, 3});
  x.k = randn({2, 2, 3, 6}, 22).transpose(2, 3);
  x.v = randn({2, 2, 9, 3}, 23).slice(2, 2, 8);
  x.dout = randn({2, 5, 4 * 3}, 24).reshape({2, 5, 4, 3}).permute({0, 2, 1, 3});
  const AttentionGrads g = check_backward(c, x);
  EXPECT_EQ(g.dk.shape(), (Shape{2, 2, 6, 3}));
}

TEST(SdpaBackward, StridedSavedOutputAndLse) {
  const Case c = with_mask("saved views", Mask::sliding_window(1, 1));
  const Inputs x = random_inputs(c, 31);
  const SdpaOptions o = options_of(c);
  const AttentionResult r = attn::scaled_dot_product_attention(x.q, x.k, x.v, o);
  const AttentionGrads want =
      attn::scaled_dot_product_attention_backward(x.q, x.k, x.v, r.out, r.lse, x.dout, o);
  // The same values through other strides: out in a (B, Lq, H * Dv) buffer, lse a slice.
  Tensor out_buffer = Tensor::zeros({2, 5, 2 * 3});
  const Tensor out_view = out_buffer.reshape({2, 5, 2, 3}).permute({0, 2, 1, 3});
  out_view.copy_from(r.out);
  Tensor lse_buffer = Tensor::zeros({2, 2, 8});
  const Tensor lse_view = lse_buffer.slice(2, 1, 6);
  lse_view.copy_from(r.lse);
  const AttentionGrads got =
      attn::scaled_dot_product_attention_backward(x.q, x.k, x.v, out_view, lse_view, x.dout, o);
  EXPECT_EQ(got.dq.to_vector(), want.dq.to_vector());
  EXPECT_EQ(got.dk.to_vector(), want.dk.to_vector());
  EXPECT_EQ(got.dv.to_vector(), want.dv.to_vector());
}

// ---- the check itself, and what the result says --------------------------------------------

TEST(SdpaBackward, TheCheckFailsAWrongGradient) {
  // A gradient off by 1e-4 in one entry fails its budget (a few u of its norm here).
  const Case c = with_mask("wrong", Mask::causal());
  const Inputs x = random_inputs(c, 41);
  const SdpaOptions o = options_of(c);
  const AttentionResult r = attn::scaled_dot_product_attention(x.q, x.k, x.v, o);
  const AttentionGrads g = attn::scaled_dot_product_attention_backward(
      x.q, x.k, x.v, r.out, r.lse, x.dout, o, BackwardOptions{.kernel = Kernel::reference});
  const LTensor qL = widen(x.q), kL = widen(x.k), vL = widen(x.v);
  const std::vector<long double> dout = widen_values(x.dout);
  const auto loss = [&] {
    return attn::test::dot(dout,
                           attn::test::oracle_attention(qL, kL, vL, 0.5L, [](Index, Index, Index i, Index j) {
                             return j <= i;
                           }).out);
  };
  const FdGradient fd = central_differences(qL, loss);
  const double budget = attn::test::budget_of(fd, {});
  std::vector<float> picked;
  for (std::int64_t e : fd.picks) picked.push_back(g.dq.data()[e]);
  EXPECT_LT(budget, 1e-6 * attn::test::distance(std::vector<float>(picked.size(), 0.0f), fd.grad));
  EXPECT_LE(attn::test::distance(picked, fd.grad), budget) << "the right gradient passes";
  picked[3] += 1e-4f * std::abs(picked[3]) + 1e-4f;
  EXPECT_GT(attn::test::distance(picked, fd.grad), budget) << "one entry off by 1e-4 fails";
}

TEST(SdpaBackward, SaysWhichKernelRan) {
  const Case c = with_mask("kernel", Mask());
  const Inputs x = random_inputs(c, 51);
  const SdpaOptions o = options_of(c);
  const AttentionResult r = attn::scaled_dot_product_attention(x.q, x.k, x.v, o);
  const AttentionGrads automatic =
      attn::scaled_dot_product_attention_backward(x.q, x.k, x.v, r.out, r.lse, x.dout, o);
  EXPECT_EQ(automatic.kernel, Kernel::fused) << "the fused backward is the default";
  EXPECT_THAT(automatic.kernel_reason, ::testing::HasSubstr("automatic: fused CPU backward"));
  EXPECT_TRUE(automatic.dbias.empty()) << "no bias gradient unless asked for";
  const AttentionGrads requested = attn::scaled_dot_product_attention_backward(
      x.q, x.k, x.v, r.out, r.lse, x.dout, o, BackwardOptions{.kernel = Kernel::reference});
  EXPECT_EQ(requested.kernel_reason, "requested");
}

// ---- errors ----------------------------------------------------------------------------------

TEST(SdpaBackward, ErrorsNameTheArgumentAndShapes) {
  const Tensor q = randn({2, 2, 5, 4}, 1), k = randn({2, 2, 7, 4}, 2), v = randn({2, 2, 7, 3}, 3);
  const Tensor out = Tensor::zeros({2, 2, 5, 3}), lse = Tensor::zeros({2, 2, 5}),
               dout = randn({2, 2, 5, 3}, 4);
  const auto backward = [&](const Tensor& q_, const Tensor& out_, const Tensor& lse_, const Tensor& dout_,
                            const SdpaOptions& o = {}, const BackwardOptions& b = {}) {
    return error_of([&] { attn::scaled_dot_product_attention_backward(q_, k, v, out_, lse_, dout_, o, b); });
  };
  EXPECT_THAT(backward(q, out, lse, randn({2, 2, 5, 4}, 5)),
              HasSubstrs({"[scaled_dot_product_attention_backward]", "dout (2, 2, 5, 4)", "(2, 2, 5, 3)",
                          "query (2, 2, 5, 4)"}));
  EXPECT_THAT(backward(q, Tensor::zeros({2, 2, 5, 4}), lse, dout),
              HasSubstrs({"out (2, 2, 5, 4)", "(2, 2, 5, 3)"}));
  EXPECT_THAT(backward(q, out, Tensor::zeros({2, 5}), dout), HasSubstrs({"lse (2, 5)", "(2, 2, 5)"}));
  EXPECT_THAT(backward(randn({2, 2, 5, 3}, 6), out, lse, dout),
              HasSubstrs({"query and key must have the same head dim", "key (2, 2, 7, 4)"}));
  EXPECT_THAT(backward(q, out, lse, dout, SdpaOptions{.mask = Mask::lengths({1, 2, 3})}),
              HasSubstrs({"valid_lens (3)", "(B) = (2)"}));
  EXPECT_THAT(backward(q, out, lse, dout, SdpaOptions{.dropout = {1.5, 0}}),
              HasSubstrs({"dropout p", "[0, 1]"}));
  EXPECT_THAT(error_of([&] {
                attn::dot_product_attention_backward(q, k, v, out, lse, dout, SdpaOptions{.scale = 2.0});
              }),
              HasSubstrs({"[dot_product_attention_backward]", "unscaled", "query (2, 2, 5, 4)"}));
}

}  // namespace
