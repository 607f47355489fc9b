// MultiHeadAttention::backward against central differences of the long-double
// module (mha_oracle.hpp): every input and parameter, over a table of
// nn.MultiheadAttention's options and the documents' variants, with every mask
// argument, dropout, unbatched and fully masked inputs; and the error paths.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <optional>
#include <string>
#include <vector>

#include "attn/modules.hpp"
#include "grad_check.hpp"
#include "mha_grad_bounds.hpp"
#include "mha_oracle.hpp"
#include "test_util.hpp"

using attn::AttentionModuleGrads;
using attn::BoolTensor;
using attn::IndexTensor;
using attn::Kernel;
using attn::Mask;
using attn::MaskFill;
using attn::MultiHeadAttention;
using attn::MultiHeadAttentionOptions;
using attn::MultiHeadForwardOptions;
using attn::MultiHeadResult;
using attn::Rng;
using attn::Shape;
using attn::Tensor;
using attn::test::central_differences;
using attn::test::dyadic_randn;
using attn::test::error_of;
using attn::test::expect_gradient;
using attn::test::HasSubstrs;
using attn::test::Index;
using attn::test::LongDoubleMha;
using attn::test::LTensor;
using attn::test::widen;

namespace mha = attn::test::mha;

namespace {

// One configuration: the constructor's options, the sizes (B = 0: unbatched) and
// the forward's mask arguments. Mask tensors are drawn per case from `masks`.
struct Case {
  std::string label{};
  MultiHeadAttentionOptions options{};
  Index L = 4, S = 5, B = 2;
  std::string kpm{};   // "", "bool", "float", "all of batch 1"
  std::string attn{};  // "", "bool2", "bool3", "float2", "float3"
  bool is_causal = false;
  bool valid_lens = false;  // (B, L) lengths, one of them 0
  bool extra_mask = false;  // fo.mask: a sliding window and a bias term
  MaskFill fill = MaskFill::neg_inf;
  Kernel kernel = Kernel::reference;  // automatic: OpenBLAS for the projections' products
};

MultiHeadAttentionOptions mha_options(std::int64_t E, std::int64_t H) {
  MultiHeadAttentionOptions o;
  o.embed_dim = E;
  o.num_heads = H;
  return o;
}

// Every parameter redrawn on dyadic_randn's grid: weights (rows, cols) ~ N(0, 1/cols),
// biases and bias_k/bias_v ~ N(0, 1/4), as test_multi_head_attention.cpp does.
void randomize(const MultiHeadAttention& m, Rng& rng) {
  for (const auto& [name, t] : m.named_parameters())
    t.copy_from(
        dyadic_randn(t.shape(), rng, t.rank() == 2 ? 1.0 / std::sqrt(static_cast<double>(t.size(1))) : 0.5));
}

void check(const Case& c) {
  SCOPED_TRACE(c.label);
  MultiHeadAttention m(c.options);
  Rng rng(std::hash<std::string>{}(c.label));
  randomize(m, rng);
  const MultiHeadAttentionOptions& o = m.options();
  const Index E = o.embed_dim, H = o.num_heads, B = c.B == 0 ? 1 : c.B;
  const bool batched = c.B != 0;
  const auto seq = [&](Index len, Index width) {
    if (!batched) return dyadic_randn({len, width}, rng);
    return dyadic_randn(o.batch_first ? Shape{c.B, len, width} : Shape{len, c.B, width}, rng);
  };
  const Tensor query = seq(c.L, o.qdim.value_or(E)), key = seq(c.S, o.kdim.value_or(E)),
               value = seq(c.S, o.vdim.value_or(E));

  MultiHeadForwardOptions fo;
  fo.kernel = c.kernel;
  fo.need_weights = true;
  fo.average_attn_weights = false;  // the applied weights per head say what dropout kept
  fo.is_causal = c.is_causal;
  fo.fill = c.fill;
  const Shape kpm_shape = batched ? Shape{c.B, c.S} : Shape{c.S};
  if (c.kpm == "bool") {
    fo.key_padding_mask = attn::test::random_bools(kpm_shape, 0.3, rng);
  } else if (c.kpm == "float") {
    fo.key_padding_mask = Tensor::randn(kpm_shape, rng);
  } else if (c.kpm == "all of batch 1") {
    BoolTensor kpm = BoolTensor::zeros(kpm_shape);
    for (Index j = 0; j < c.S; ++j) kpm(1, j) = true;
    fo.key_padding_mask = kpm;
  }
  if (c.attn == "bool2") fo.attn_mask = attn::test::random_bools({c.L, c.S}, 0.3, rng);
  if (c.attn == "bool3") fo.attn_mask = attn::test::random_bools({B * H, c.L, c.S}, 0.3, rng);
  if (c.attn == "float2") fo.attn_mask = Tensor::randn({c.L, c.S}, rng);
  if (c.attn == "float3") fo.attn_mask = Tensor::randn({B * H, c.L, c.S}, rng);
  if (c.valid_lens) {
    IndexTensor lens = IndexTensor::zeros({B, c.L});
    lens.for_each([&](std::int64_t& n) { n = static_cast<std::int64_t>(rng.next_u64() % (c.S + 1)); });
    lens(0, 0) = 0;
    fo.valid_lens = batched ? lens : lens.select(0, 0);
  }
  Tensor mask_bias;
  if (c.extra_mask) {
    mask_bias = Tensor::randn({1, H, c.L, c.S}, rng);
    fo.mask = Mask::sliding_window(2, 1) & Mask::bias(mask_bias);
  }

  if (o.dropout > 0)
    m.train();
  else
    m.eval();
  const MultiHeadResult y = m.forward(query, key, value, fo);
  const Tensor dy = dyadic_randn(y.output.shape(), rng);
  const AttentionModuleGrads g = m.backward(dy);
  EXPECT_EQ(attn::test::names_of(g.params), attn::test::names_of(m.named_parameters()));

  // The long-double module, with dropout's factors read off the weights applied.
  LongDoubleMha lm(m);
  const LTensor qL = widen(query), kL = widen(key), vL = widen(value);
  const long double keep = o.dropout < 1 ? 1.0L / (1.0L - static_cast<long double>(o.dropout)) : 0.0L;
  const Tensor applied = batched ? y.weights : y.weights.unsqueeze(0);  // (B, H, L, S')
  const attn::test::DropFn drop =
      o.dropout == 0 ? attn::test::DropFn{} : attn::test::DropFn([&](Index b, Index h, Index i, Index j) {
        return applied(b, h, i, j) != 0 ? keep : 0.0L;
      });
  const Tensor* bias_ptr = mask_bias.defined() ? &mask_bias : nullptr;
  const std::vector<long double> dyL = attn::test::widen_values(dy);
  const auto loss = [&] {
    return attn::test::dot(dyL,
                           mha::multi_head_attention(lm, qL, kL, vL, fo, nullptr, bias_ptr, drop).output);
  };
  mha::Internals in;
  mha::multi_head_attention(lm, qL, kL, vL, fo, nullptr, bias_ptr, drop, &in);
  attn::test::NamedBounds bounds =
      attn::test::mha_bounds(lm, qL, kL, vL, widen(dy), in, drop, fo.fill, c.kernel != Kernel::reference);

  expect_gradient(g.query, query.shape(), central_differences(qL, loss), bounds["query"], "query");
  expect_gradient(g.key, key.shape(), central_differences(kL, loss), bounds["key"], "key");
  expect_gradient(g.value, value.shape(), central_differences(vL, loss), bounds["value"], "value");
  for (const auto& [name, grad] : g.params) {
    LTensor* p = lm.slot(name);
    ASSERT_NE(p, nullptr) << name;
    EXPECT_EQ(bounds.count(name), 1u) << name;
    expect_gradient(grad, attn::find_parameter(m.named_parameters(), name).shape(),
                    central_differences(*p, loss), bounds[name], name);
  }
}

// ---- nn.MultiheadAttention's options ---------------------------------------------------

TEST(MultiHeadAttentionBackward, PackedProjections) {
  check({.label = "packed", .options = mha_options(8, 2)});
}

TEST(MultiHeadAttentionBackward, BatchFirst) {
  MultiHeadAttentionOptions o = mha_options(8, 4);
  o.batch_first = true;
  check({.label = "batch_first", .options = o, .L = 3, .S = 5});
}

TEST(MultiHeadAttentionBackward, NoBias) {
  MultiHeadAttentionOptions o = mha_options(6, 3);
  o.bias = false;
  check({.label = "no bias", .options = o});
}

TEST(MultiHeadAttentionBackward, SeparateProjectionsForKdimAndVdim) {
  MultiHeadAttentionOptions o = mha_options(8, 2);
  o.kdim = 5;
  o.vdim = 3;
  check({.label = "kdim, vdim", .options = o, .L = 4, .S = 6});
}

TEST(MultiHeadAttentionBackward, AppendedKeys) {
  MultiHeadAttentionOptions bias_kv = mha_options(8, 2);
  bias_kv.add_bias_kv = true;
  check({.label = "add_bias_kv", .options = bias_kv, .kpm = "bool"});
  MultiHeadAttentionOptions zero = mha_options(8, 2);
  zero.add_zero_attn = true;
  check({.label = "add_zero_attn", .options = zero, .attn = "bool2"});
  MultiHeadAttentionOptions both = bias_kv;
  both.add_zero_attn = true;
  check({.label = "bias_kv and zero_attn", .options = both, .L = 3, .S = 4, .kpm = "bool", .attn = "float3"});
}

TEST(MultiHeadAttentionBackward, MaskArguments) {
  check({.label = "kpm float", .options = mha_options(8, 2), .kpm = "float"});
  check({.label = "attn_mask bool 3-D", .options = mha_options(8, 2), .attn = "bool3"});
  check({.label = "attn_mask float 2-D", .options = mha_options(8, 2), .attn = "float2"});
  check({.label = "is_causal", .options = mha_options(8, 2), .L = 5, .S = 5, .is_causal = true});
  check({.label = "valid_lens, d2l fill",
         .options = mha_options(8, 2),
         .valid_lens = true,
         .fill = MaskFill::d2l});
  check({.label = "fo.mask: window and bias", .options = mha_options(8, 2), .extra_mask = true});
}

TEST(MultiHeadAttentionBackward, Unbatched) {
  check({.label = "unbatched", .options = mha_options(8, 2), .B = 0, .kpm = "bool", .valid_lens = true});
}

TEST(MultiHeadAttentionBackward, DropoutUsesTheForwardsMask) {
  MultiHeadAttentionOptions o = mha_options(8, 2);
  o.dropout = 0.3;
  o.seed = 9;
  check({.label = "dropout", .options = o, .L = 5, .S = 6, .kpm = "bool"});
  o.batch_first = true;
  o.add_bias_kv = true;
  check({.label = "dropout, batch_first, add_bias_kv", .options = o, .is_causal = true});
}

TEST(MultiHeadAttentionBackward, FullyMaskedBatchHasZeroGradientsThere) {
  check({.label = "batch 1 sees no key", .options = mha_options(8, 2), .kpm = "all of batch 1"});
}

// ---- the fast kernels ----------------------------------------------------------------------

TEST(MultiHeadAttentionBackward, OpenBlasProjections) {
  // Kernel::automatic with d2l's fill: OpenBLAS for the projections (forward and
  // backward), the reference for attention, whose errors the bound describes.
  MultiHeadAttentionOptions o = mha_options(8, 2);
  o.kdim = 6;
  o.add_bias_kv = true;
  check({.label = "automatic",
         .options = o,
         .valid_lens = true,
         .fill = MaskFill::d2l,
         .kernel = Kernel::automatic});
  o.batch_first = true;
  o.dropout = 0.2;
  check({.label = "automatic, batch_first, dropout",
         .options = o,
         .kpm = "bool",
         .fill = MaskFill::d2l,
         .kernel = Kernel::automatic});
}

TEST(MultiHeadAttentionBackward, AfterTheFusedForward) {
  // The fused forward's out and lse carry its own rounding (tested in the forward's
  // tests); the backward that reads them returns finite gradients of every name.
  for (Kernel kernel : {Kernel::automatic, Kernel::fused}) {
    MultiHeadAttention m(mha_options(8, 2));
    Rng rng(3);
    const Tensor x = Tensor::randn({5, 2, 8}, rng);
    MultiHeadForwardOptions fo;
    fo.kernel = kernel;
    fo.is_causal = true;
    const MultiHeadResult y = m.forward(x, x, x, fo);
    const AttentionModuleGrads g = m.backward(Tensor::randn(y.output.shape(), rng));
    EXPECT_EQ(attn::test::names_of(g.params), attn::test::names_of(m.named_parameters()));
    for (const Tensor& t : {g.query, g.key, g.value}) attn::test::expect_finite(t, "input gradient");
    for (const auto& [name, t] : g.params) attn::test::expect_finite(t, name);
  }
}

// ---- the documents' variants -------------------------------------------------------------

TEST(MultiHeadAttentionBackward, TutorialWidthsAndNoOutputProjection) {
  MultiHeadAttentionOptions d2l = mha_options(8, 2);
  d2l.qdim = 6;
  d2l.kdim = 5;
  d2l.vdim = 3;
  check({.label = "qdim (d2l's query_size)", .options = d2l});
  MultiHeadAttentionOptions self = mha_options(6, 2);
  self.qk_proj_dim = 4;
  self.v_proj_dim = 8;
  self.out_proj = false;
  self.bias = false;
  check({.label = "Self_Attention: dim_k, dim_v, no out_proj", .options = self});
}

// ---- errors ----------------------------------------------------------------------------------

TEST(MultiHeadAttentionBackward, NeedsAForwardAndTheOutputsShape) {
  MultiHeadAttention m(mha_options(8, 2));
  EXPECT_THAT(error_of([&] {
                m.backward(Tensor::zeros({4, 2, 8}));
              }),
              HasSubstrs({"[MultiHeadAttention.backward]", "call forward first"}));
  const Tensor x = Tensor::zeros({4, 2, 8});
  m.forward(x, x, x);
  EXPECT_THAT(error_of([&] {
                m.backward(Tensor::zeros({2, 4, 8}));
              }),
              HasSubstrs({"[MultiHeadAttention.backward]", "grad_output (2, 4, 8)", "(4, 2, 8)"}));
}

}  // namespace
