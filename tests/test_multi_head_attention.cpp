// attn::MultiHeadAttention: nn.MultiheadAttention's semantics, against the
// long-double oracle of mha_oracle.hpp over a table of configurations, plus the
// documents' variants (d2l, the Transformer tutorial, Self_Attention), dropout,
// fully masked rows, parameters and error messages.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <ostream>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "attn/modules.hpp"
#include "mha_oracle.hpp"
#include "test_util.hpp"
#include "tolerance.hpp"

using attn::BoolTensor;
using attn::IndexTensor;
using attn::Kernel;
using attn::MaskFill;
using attn::MultiHeadAttention;
using attn::MultiHeadAttentionOptions;
using attn::MultiHeadForwardOptions;
using attn::MultiHeadResult;
using attn::Rng;
using attn::Shape;
using attn::Tensor;
using attn::test::error_of;
using attn::test::expect_finite;
using attn::test::HasSubstrs;
using attn::test::float_chain_budget;
using attn::test::kInf;
using attn::test::kKernels;
using attn::test::names_of;
using attn::test::random_bias;
using attn::test::random_bools;
using attn::test::relative_error;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

namespace mha = attn::test::mha;

namespace {

// Every parameter drawn anew through its named_parameters handle (the init leaves
// biases at zero, which would hide them): weights (rows, cols) ~ N(0, 1 / cols) so
// projections of unit inputs stay near unit scale, biases and bias_k/bias_v ~ N(0, 1/4).
void randomize(const MultiHeadAttention& m, Rng& rng) {
  for (const auto& [name, t] : m.named_parameters()) {
    const double stddev = t.rank() == 2 ? 1.0 / std::sqrt(static_cast<double>(t.size(1))) : 0.5;
    Tensor fresh = Tensor::randn(t.shape(), rng);
    fresh.for_each([stddev](float& x) { x = static_cast<float>(x * stddev); });
    t.copy_from(fresh);
  }
}

const Tensor& parameter(const attn::NamedParameters& params, const std::string& name) {
  for (const auto& [n, t] : params)
    if (n == name) return t;
  static const Tensor none;
  ADD_FAILURE() << "no parameter " << name;
  return none;
}

IndexTensor random_lengths(const Shape& shape, std::int64_t max, Rng& rng) {
  IndexTensor t = IndexTensor::zeros(shape);
  t.for_each([&](std::int64_t& x) { x = static_cast<std::int64_t>(rng.next_u64() % (max + 1)); });
  return t;
}

// The error budgets of a forward: the chain of reductions of the output is
// in-projection, scores, softmax sum, weighted sum, out-projection.
struct Budgets {
  double output, weights;
};
Budgets budgets_for(const MultiHeadAttentionOptions& o, std::int64_t extended_keys) {
  const std::int64_t E = o.embed_dim;
  const std::int64_t in = std::max({o.qdim.value_or(E), o.kdim.value_or(E), o.vdim.value_or(E)});
  const std::int64_t head_dim = o.qk_proj_dim.value_or(E) / o.num_heads;
  const std::int64_t pv = o.v_proj_dim.value_or(E);
  return {float_chain_budget({in, head_dim, extended_keys, extended_keys, pv}),
          float_chain_budget({in, head_dim, extended_keys, o.num_heads})};
}

// The module's forward against the oracle: shapes, values, weights, no NaN.
// `mask_bias`: the test's own copy of fo.mask's additive terms, if it has any.
void expect_matches_oracle(MultiHeadAttention& m, const Tensor& query, const Tensor& key, const Tensor& value,
                           const MultiHeadForwardOptions& fo, const Tensor* mask_bias = nullptr) {
  const MultiHeadResult r = m.forward(query, key, value, fo);
  const mha::Result want = mha::multi_head_attention(m, query, key, value, fo, nullptr, mask_bias);
  const attn::MultiHeadAttentionOptions& o = m.options();
  const std::int64_t S = key.size(key.rank() == 3 && o.batch_first ? 1 : 0);
  const Budgets budget = budgets_for(o, S + (o.add_bias_kv ? 1 : 0) + (o.add_zero_attn ? 1 : 0));
  ASSERT_EQ(r.output.shape(), want.output_shape);
  expect_finite(r.output, "output");
  EXPECT_LE(relative_error(r.output.to_vector(), want.output), budget.output);
  if (fo.need_weights) {
    ASSERT_TRUE(r.weights.defined());
    ASSERT_EQ(r.weights.shape(), want.weights_shape);
    expect_finite(r.weights, "weights");
    EXPECT_LE(relative_error(r.weights.to_vector(), want.weights), budget.weights);
  } else {
    EXPECT_FALSE(r.weights.defined()) << "weights without need_weights";
  }
}

// ---- the table of configurations ------------------------------------------------

enum class Kpm { none, boolean, additive };
enum class AttnMask { none, bool2d, float2d, bool3d, float3d };
enum class Lens { none, per_batch, per_query };

struct Case {
  std::string name;
  std::int64_t E = 8, H = 2;
  std::optional<std::int64_t> kdim{}, vdim{};
  bool bias = true, add_bias_kv = false, add_zero_attn = false, batch_first = false;
  bool unbatched = false, self_attention = false;
  bool strided = false;  // inputs are non-contiguous views
  std::int64_t B = 2, L = 3, S = 5;
  Kpm kpm = Kpm::none;
  AttnMask attn_mask = AttnMask::none;
  bool is_causal = false;
  Lens lens = Lens::none;
  bool need_weights = true, average = true;
  // fo.mask, an attn::Mask over the (B, H, L, S) real keys: finite biases, a
  // bottom_right sliding window, a bottom_right causal mask (bottom_right, so that
  // the diagonal moves if the module measured it over the extra keys too).
  bool mask_bias = false, mask_window = false, mask_causal = false;
};

// gtest prints a failing case by name.
void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

template <class Edit>
Case make(const std::string& name, Edit edit) {
  Case c;
  c.name = name;
  edit(c);
  if (c.self_attention) c.S = c.L;
  return c;
}

std::vector<Case> cases() {
  return {
      make("packed_cross", [](Case&) {}),
      make("packed_self", [](Case& c) { c.self_attention = true; }),
      make("packed_self_batch_first", [](Case& c) { c.self_attention = c.batch_first = true; }),
      make("batch_first_cross", [](Case& c) { c.batch_first = true; }),
      make("separate_kdim_vdim", [](Case& c) { c.kdim = 5, c.vdim = 3; }),
      make("separate_batch_first", [](Case& c) { c.kdim = 5, c.vdim = 3, c.batch_first = true; }),
      make("separate_kdim_only", [](Case& c) { c.kdim = 6; }),
      make("no_bias", [](Case& c) { c.bias = false; }),
      make("no_bias_separate", [](Case& c) { c.bias = false, c.kdim = 5, c.vdim = 7; }),
      make("add_bias_kv", [](Case& c) { c.add_bias_kv = true; }),
      make("add_zero_attn", [](Case& c) { c.add_zero_attn = true; }),
      make("bias_kv_and_zero_attn_separate",
           [](Case& c) { c.add_bias_kv = c.add_zero_attn = true, c.kdim = 5, c.vdim = 3; }),
      make("bias_kv_zero_attn_with_masks",
           [](Case& c) {
             c.add_bias_kv = c.add_zero_attn = true, c.kpm = Kpm::boolean, c.attn_mask = AttnMask::float3d;
           }),
      make("bias_kv_with_valid_lens", [](Case& c) { c.add_bias_kv = true, c.lens = Lens::per_batch; }),
      make("zero_attn_with_causal",
           [](Case& c) { c.add_zero_attn = c.self_attention = c.is_causal = true, c.L = 4; }),
      make("unbatched", [](Case& c) { c.unbatched = true; }),
      make("unbatched_self", [](Case& c) { c.unbatched = c.self_attention = true, c.L = 4; }),
      make("unbatched_separate_masks",
           [](Case& c) {
             c.unbatched = true, c.kdim = 5, c.vdim = 3, c.kpm = Kpm::boolean, c.attn_mask = AttnMask::float3d;
           }),
      make("unbatched_per_head_weights", [](Case& c) { c.unbatched = true, c.average = false; }),
      make("unbatched_batch_first_ignored", [](Case& c) { c.unbatched = c.batch_first = true; }),
      make("key_padding_bool", [](Case& c) { c.kpm = Kpm::boolean; }),
      make("key_padding_float", [](Case& c) { c.kpm = Kpm::additive; }),
      make("attn_mask_bool_2d", [](Case& c) { c.attn_mask = AttnMask::bool2d; }),
      make("attn_mask_float_2d", [](Case& c) { c.attn_mask = AttnMask::float2d; }),
      make("attn_mask_bool_3d", [](Case& c) { c.attn_mask = AttnMask::bool3d, c.average = false; }),
      make("attn_mask_float_3d", [](Case& c) { c.attn_mask = AttnMask::float3d, c.average = false; }),
      make("attn_mask_3d_four_heads",
           [](Case& c) { c.H = 4, c.attn_mask = AttnMask::bool3d, c.average = false, c.batch_first = true; }),
      make("is_causal_self", [](Case& c) { c.is_causal = c.self_attention = true, c.L = 4; }),
      make("is_causal_cross", [](Case& c) { c.is_causal = true; }),
      make("is_causal_with_padding", [](Case& c) { c.is_causal = true, c.kpm = Kpm::boolean, c.L = 5; }),
      make("valid_lens_1d", [](Case& c) { c.lens = Lens::per_batch, c.B = 3; }),
      make("valid_lens_2d", [](Case& c) { c.lens = Lens::per_query, c.batch_first = true; }),
      make("valid_lens_with_masks",
           [](Case& c) { c.lens = Lens::per_query, c.kpm = Kpm::additive, c.attn_mask = AttnMask::bool2d; }),
      make("per_head_weights", [](Case& c) { c.average = false; }),
      make("no_weights", [](Case& c) { c.need_weights = false; }),
      make("no_weights_masked", [](Case& c) { c.need_weights = false, c.kpm = Kpm::boolean, c.lens = Lens::per_batch; }),
      make("one_head", [](Case& c) { c.H = 1; }),
      make("one_head_separate", [](Case& c) { c.H = 1, c.kdim = 3, c.vdim = 2; }),
      make("four_heads", [](Case& c) { c.H = 4, c.average = false; }),
      make("four_heads_separate_masks",
           [](Case& c) { c.H = 4, c.kdim = 6, c.vdim = 5, c.kpm = Kpm::boolean, c.attn_mask = AttnMask::float2d; }),
      make("odd_sizes", [](Case& c) { c.E = 12, c.H = 4, c.B = 3, c.L = 7, c.S = 9; }),
      make("strided_inputs", [](Case& c) { c.strided = true, c.kpm = Kpm::boolean; }),
      make("strided_inputs_batch_first_separate",
           [](Case& c) { c.strided = c.batch_first = true, c.kdim = 5, c.vdim = 3; }),
      make("strided_self", [](Case& c) { c.strided = c.self_attention = true, c.is_causal = true; }),
      make("strided_unbatched", [](Case& c) { c.strided = c.unbatched = true; }),
      make("length_one", [](Case& c) { c.L = 1, c.S = 1, c.B = 1; }),
      make("everything",
           [](Case& c) {
             c.kdim = 5, c.vdim = 6, c.add_bias_kv = c.add_zero_attn = c.batch_first = c.is_causal = true;
             c.kpm = Kpm::additive, c.attn_mask = AttnMask::bool3d, c.lens = Lens::per_query, c.average = false;
           }),
      make("unbatched_mask_bias_bias_kv", [](Case& c) { c.unbatched = c.mask_bias = c.add_bias_kv = true; }),
      make("mask_everything",
           [](Case& c) {
             c.kdim = 5, c.vdim = 6, c.add_bias_kv = c.add_zero_attn = c.batch_first = true;
             c.mask_bias = c.mask_window = true, c.kpm = Kpm::boolean, c.attn_mask = AttnMask::float3d;
             c.lens = Lens::per_query, c.average = false;
           }),
  };
}

// Each kind of fo.mask with and without the extra keys of add_bias_kv / add_zero_attn,
// which the mask must leave open.
std::vector<Case> mask_cases() {
  std::vector<Case> out;
  const std::pair<std::string, void (*)(Case&)> kinds[] = {
      {"mask_bias", [](Case& c) { c.mask_bias = true; }},
      {"mask_window", [](Case& c) { c.mask_window = true; }},
      {"mask_causal_bottom_right", [](Case& c) { c.mask_causal = true; }},
  };
  const std::pair<std::string, void (*)(Case&)> extras[] = {
      {"", [](Case&) {}},
      {"_bias_kv", [](Case& c) { c.add_bias_kv = true; }},
      {"_zero_attn", [](Case& c) { c.add_zero_attn = true; }},
      {"_bias_kv_zero_attn", [](Case& c) { c.add_bias_kv = c.add_zero_attn = true; }},
  };
  for (const auto& [kind, set_kind] : kinds)
    for (const auto& [extra, set_extra] : extras)
      out.push_back(make(kind + extra, [&](Case& c) { set_kind(c), set_extra(c); }));
  return out;
}

std::vector<Case> all_cases() {
  std::vector<Case> all = cases();
  for (Case& c : mask_cases()) all.push_back(std::move(c));
  return all;
}

class MultiHeadAttentionCase : public ::testing::TestWithParam<std::tuple<Case, Kernel>> {};

TEST_P(MultiHeadAttentionCase, MatchesOracle) {
  const Case& c = std::get<0>(GetParam());
  const Kernel kernel = std::get<1>(GetParam());
  MultiHeadAttentionOptions o;
  o.embed_dim = c.E;
  o.num_heads = c.H;
  o.bias = c.bias;
  o.add_bias_kv = c.add_bias_kv;
  o.add_zero_attn = c.add_zero_attn;
  o.kdim = c.kdim;
  o.vdim = c.vdim;
  o.batch_first = c.batch_first;
  o.seed = 3;
  MultiHeadAttention m(o);
  EXPECT_EQ(m.packed_in_proj(), !c.kdim && !c.vdim);
  std::uint64_t seed = 0;
  for (char ch : c.name) seed = seed * 131 + static_cast<unsigned char>(ch);
  Rng rng(seed);
  randomize(m, rng);

  // Inputs in the module's layout.
  const auto shape_of = [&](std::int64_t len, std::int64_t width) {
    return c.unbatched ? Shape{len, width} : c.batch_first ? Shape{c.B, len, width} : Shape{len, c.B, width};
  };
  const auto input = [&](std::int64_t len, std::int64_t width) {
    const Shape shape = shape_of(len, width);
    if (!c.strided) return Tensor::randn(shape, rng);
    if (c.unbatched) return Tensor::randn({len, width + 3}, rng).slice(1, 1, width + 1);
    return Tensor::randn({shape[1], shape[0], shape[2]}, rng).transpose(0, 1);  // the other layout
  };
  const Tensor query = input(c.L, c.E);
  const Tensor key = c.self_attention ? query : input(c.S, c.kdim.value_or(c.E));
  const Tensor value = c.self_attention ? query : input(c.S, c.vdim.value_or(c.E));
  ASSERT_EQ(query.is_contiguous(), !c.strided);

  MultiHeadForwardOptions fo;
  fo.kernel = kernel;
  fo.need_weights = c.need_weights;
  fo.average_attn_weights = c.average;
  fo.is_causal = c.is_causal;
  const std::int64_t B = c.unbatched ? 1 : c.B;
  const Shape kpm_shape = c.unbatched ? Shape{c.S} : Shape{c.B, c.S};
  if (c.kpm == Kpm::boolean) fo.key_padding_mask = random_bools(kpm_shape, 0.3, rng);
  if (c.kpm == Kpm::additive) fo.key_padding_mask = random_bias(kpm_shape, 0.15, rng);
  const Shape mask_2d = {c.L, c.S}, mask_3d = {B * c.H, c.L, c.S};
  if (c.attn_mask == AttnMask::bool2d) fo.attn_mask = random_bools(mask_2d, 0.3, rng);
  if (c.attn_mask == AttnMask::float2d) fo.attn_mask = random_bias(mask_2d, 0.15, rng);
  if (c.attn_mask == AttnMask::bool3d) fo.attn_mask = random_bools(mask_3d, 0.3, rng);
  if (c.attn_mask == AttnMask::float3d) fo.attn_mask = random_bias(mask_3d, 0.15, rng);
  if (c.lens == Lens::per_batch) fo.valid_lens = random_lengths({c.B}, c.S, rng);
  if (c.lens == Lens::per_query) fo.valid_lens = random_lengths({c.B, c.L}, c.S, rng);
  Tensor mask_bias;  // the test's own copy of fo.mask's additive terms
  if (c.mask_bias) {
    mask_bias = Tensor::randn({B, c.H, c.L, c.S}, rng);  // finite
    fo.mask &= attn::Mask::bias(mask_bias);
  }
  if (c.mask_window) fo.mask &= attn::Mask::sliding_window(1, 1, attn::Align::bottom_right);
  if (c.mask_causal) fo.mask &= attn::Mask::causal(attn::Align::bottom_right);

  expect_matches_oracle(m, query, key, value, fo, mask_bias.defined() ? &mask_bias : nullptr);
}

INSTANTIATE_TEST_SUITE_P(Table, MultiHeadAttentionCase,
                         ::testing::Combine(::testing::ValuesIn(all_cases()), ::testing::ValuesIn(kKernels)),
                         [](const ::testing::TestParamInfo<std::tuple<Case, Kernel>>& info) {
                           return std::get<0>(info.param).name + "_" + attn::to_string(std::get<1>(info.param));
                         });

}  // namespace

// ---- the documents' configurations ------------------------------------------------

TEST(MultiHeadAttention, D2lConfiguration) {
  // Document 000: d2l's MultiHeadAttention(key_size = query_size = value_size = 100,
  // num_hiddens = 100, num_heads = 5, bias = False) on (B, L, num_hiddens) inputs with
  // valid_lens; 20 per head.
  MultiHeadAttentionOptions o;
  o.embed_dim = 100;
  o.num_heads = 5;
  o.bias = false;
  o.qdim = o.kdim = o.vdim = 100;
  o.batch_first = true;
  MultiHeadAttention m(o);
  m.eval();
  EXPECT_TRUE(m.packed_in_proj());
  const attn::NamedParameters params = m.named_parameters();
  EXPECT_THAT(names_of(params), ElementsAre("in_proj_weight", "out_proj.weight"));
  EXPECT_EQ(parameter(params, "in_proj_weight").shape(), (Shape{300, 100}));
  EXPECT_EQ(parameter(params, "out_proj.weight").shape(), (Shape{100, 100}));

  Rng rng(100);
  const Tensor X = Tensor::randn({2, 4, 100}, rng);  // queries (batch_size, num_queries, num_hiddens)
  const Tensor Y = Tensor::randn({2, 6, 100}, rng);  // keys and values (batch_size, num_kvpairs, num_hiddens)
  for (const IndexTensor& valid_lens : {IndexTensor::from({2}, {3, 2}),
                                        IndexTensor::from({2, 4}, {1, 2, 3, 6, 6, 5, 0, 2})}) {
    SCOPED_TRACE("valid_lens " + valid_lens.shape_string());
    MultiHeadForwardOptions fo;
    fo.valid_lens = valid_lens;
    fo.fill = MaskFill::d2l;
    fo.average_attn_weights = false;
    const MultiHeadResult r = m.forward(X, Y, Y, fo);
    EXPECT_EQ(r.output.shape(), (Shape{2, 4, 100}));
    EXPECT_EQ(r.weights.shape(), (Shape{2, 5, 4, 6}));
    for (Kernel kernel : kKernels) {
      SCOPED_TRACE(attn::to_string(kernel));
      fo.kernel = kernel;
      expect_matches_oracle(m, X, Y, Y, fo);
    }
  }
  // d2l's fill: a zero valid length gives uniform weights over every key.
  MultiHeadForwardOptions fo;
  fo.valid_lens = IndexTensor::from({2}, {0, 6});
  fo.fill = MaskFill::d2l;
  fo.average_attn_weights = false;
  const MultiHeadResult r = m.forward(X, Y, Y, fo);
  EXPECT_LE(relative_error(r.weights.select(0, 0).to_vector(), std::vector<long double>(5 * 4 * 6, 1.0L / 6)),
            budgets_for(o, 6).weights);
  expect_matches_oracle(m, X, Y, Y, fo);
}

TEST(MultiHeadAttention, SelfAttentionDocument003) {
  // Self_Attention(input_dim = 2, dim_k = 4, dim_v = 5) on X = randn(4, 3, 2): biased
  // q, k, v maps, one head, no output map; attn computes softmax(Q K^T / sqrt(4)) V.
  MultiHeadAttentionOptions o;
  o.embed_dim = 2;
  o.qdim = o.kdim = o.vdim = 2;
  o.qk_proj_dim = 4;
  o.v_proj_dim = 5;
  o.num_heads = 1;
  o.out_proj = false;
  o.bias = true;
  o.batch_first = true;
  MultiHeadAttention m(o);
  EXPECT_FALSE(m.packed_in_proj());
  const attn::NamedParameters params = m.named_parameters();
  EXPECT_THAT(names_of(params), ElementsAre("q_proj_weight", "k_proj_weight", "v_proj_weight", "in_proj_bias"));
  EXPECT_EQ(parameter(params, "q_proj_weight").shape(), (Shape{4, 2}));
  EXPECT_EQ(parameter(params, "k_proj_weight").shape(), (Shape{4, 2}));
  EXPECT_EQ(parameter(params, "v_proj_weight").shape(), (Shape{5, 2}));
  EXPECT_EQ(parameter(params, "in_proj_bias").shape(), (Shape{13}));

  Rng rng(3);
  randomize(m, rng);
  const Tensor X = Tensor::randn({4, 3, 2}, rng);
  MultiHeadForwardOptions fo;
  const MultiHeadResult r = m.forward(X, X, X, fo);
  EXPECT_EQ(r.output.shape(), (Shape{4, 3, 5}));
  EXPECT_EQ(r.weights.shape(), (Shape{4, 3, 3}));
  for (Kernel kernel : kKernels) {
    SCOPED_TRACE(attn::to_string(kernel));
    fo.kernel = kernel;
    expect_matches_oracle(m, X, X, X, fo);
  }

  // The same, spelled out from the parameters: Q = X Wq^T + bq, ..., softmax(Q K^T / 2) V.
  const Tensor& Wq = m.q_proj_weight;
  const Tensor& Wk = m.k_proj_weight;
  const Tensor& Wv = m.v_proj_weight;
  const Tensor& b = m.in_proj_bias;
  std::vector<long double> want;
  for (std::int64_t n = 0; n < 4; ++n)
    for (std::int64_t i = 0; i < 3; ++i) {
      const auto proj = [&](const Tensor& W, std::int64_t row0, std::int64_t l, std::int64_t p) {
        long double acc = b(row0 + p);
        for (std::int64_t c = 0; c < 2; ++c) acc += static_cast<long double>(X(n, l, c)) * W(p, c);
        return acc;
      };
      std::vector<long double> s(3);
      long double sum = 0;
      for (std::int64_t j = 0; j < 3; ++j) {
        long double dot = 0;
        for (std::int64_t p = 0; p < 4; ++p) dot += proj(Wq, 0, i, p) * proj(Wk, 4, j, p);
        s[j] = std::exp(dot / 2);
        sum += s[j];
      }
      for (std::int64_t p = 0; p < 5; ++p) {
        long double acc = 0;
        for (std::int64_t j = 0; j < 3; ++j) acc += s[j] / sum * proj(Wv, 8, j, p);
        want.push_back(acc);
      }
    }
  EXPECT_LE(relative_error(r.output.to_vector(), want), budgets_for(o, 3).output);
}

TEST(MultiHeadAttention, TutorialDocument002) {
  // MultiHeadAttention(d_model = 8, num_heads = 2): biased wq, wk, wv and dense, depth 4,
  // a mask added as mask * -1e9 (1 = blocked), attention weights per head.
  MultiHeadAttentionOptions o;
  o.embed_dim = 8;
  o.num_heads = 2;
  o.batch_first = true;
  MultiHeadAttention m(o);
  Rng rng(2);
  randomize(m, rng);
  const std::int64_t B = 2, L = 4, S = 5;
  const Tensor enc = Tensor::randn({B, S, 8}, rng);
  const Tensor dec = Tensor::randn({B, L, 8}, rng);

  // Encoder self-attention with a padding mask (B, 1, 1, S) spelled per head as (B * H, S, S).
  const std::vector<std::vector<float>> padding = {{0, 0, 0, 1, 1}, {0, 0, 0, 0, 1}};
  Tensor pad3 = Tensor::zeros({B * 2, S, S});
  for (std::int64_t bh = 0; bh < B * 2; ++bh)
    for (std::int64_t i = 0; i < S; ++i)
      for (std::int64_t j = 0; j < S; ++j) pad3(bh, i, j) = padding[bh / 2][j] * -1e9f;
  // Decoder masked self-attention: the look-ahead mask 1 above the diagonal.
  Tensor look_ahead = Tensor::zeros({L, L});
  for (std::int64_t i = 0; i < L; ++i)
    for (std::int64_t j = i + 1; j < L; ++j) look_ahead(i, j) = 1 * -1e9f;
  // Encoder-decoder attention: queries from the decoder, keys and values from the encoder.
  Tensor pad_keys = Tensor::zeros({B, S});
  for (std::int64_t b = 0; b < B; ++b)
    for (std::int64_t j = 0; j < S; ++j) pad_keys(b, j) = padding[b][j] * -1e9f;

  for (Kernel kernel : kKernels) {
    SCOPED_TRACE(attn::to_string(kernel));
    MultiHeadForwardOptions fo;
    fo.kernel = kernel;
    fo.average_attn_weights = false;

    fo.attn_mask = pad3;
    expect_matches_oracle(m, enc, enc, enc, fo);
    const MultiHeadResult encoder = m.forward(enc, enc, enc, fo);
    ASSERT_EQ(encoder.weights.shape(), (Shape{B, 2, S, S}));
    for (std::int64_t b = 0; b < B; ++b)
      for (std::int64_t h = 0; h < 2; ++h)
        for (std::int64_t i = 0; i < S; ++i)
          for (std::int64_t j = 0; j < S; ++j)
            if (padding[b][j] == 1) {
              EXPECT_EQ(encoder.weights(b, h, i, j), 0.0f);
            }

    fo.attn_mask = look_ahead;
    expect_matches_oracle(m, dec, dec, dec, fo);
    const MultiHeadResult decoder = m.forward(dec, dec, dec, fo);
    // -1e9 blocks as well as is_causal's -inf.
    MultiHeadForwardOptions causal = fo;
    causal.attn_mask = {};
    causal.is_causal = true;
    const MultiHeadResult decoder_causal = m.forward(dec, dec, dec, causal);
    EXPECT_LE(relative_error(decoder.output.to_vector(), decoder_causal.output.to_vector()),
              budgets_for(o, L).output);
    EXPECT_LE(relative_error(decoder.weights.to_vector(), decoder_causal.weights.to_vector()),
              budgets_for(o, L).weights);

    fo.attn_mask = {};
    fo.key_padding_mask = pad_keys;
    expect_matches_oracle(m, dec, enc, enc, fo);
    const MultiHeadResult cross = m.forward(dec, enc, enc, fo);
    EXPECT_EQ(cross.output.shape(), (Shape{B, L, 8}));
    EXPECT_EQ(cross.weights.shape(), (Shape{B, 2, L, S}));
  }
}

TEST(MultiHeadAttention, IsCausalEqualsBooleanUpperTriangle) {
  MultiHeadAttentionOptions o;
  o.embed_dim = 8;
  o.num_heads = 2;
  MultiHeadAttention m(o);
  Rng rng(9);
  randomize(m, rng);
  const std::int64_t L = 5, S = 7;  // top-left: query i sees keys 0..i
  const Tensor q = Tensor::randn({L, 2, 8}, rng);
  const Tensor kv = Tensor::randn({S, 2, 8}, rng);
  BoolTensor triu = BoolTensor::zeros({L, S});
  for (std::int64_t i = 0; i < L; ++i)
    for (std::int64_t j = i + 1; j < S; ++j) triu(i, j) = true;
  MultiHeadForwardOptions causal;
  causal.is_causal = true;
  MultiHeadForwardOptions explicit_mask;
  explicit_mask.attn_mask = triu;
  const MultiHeadResult a = m.forward(q, kv, kv, causal);
  const MultiHeadResult b = m.forward(q, kv, kv, explicit_mask);
  EXPECT_LE(relative_error(a.output.to_vector(), b.output.to_vector()), budgets_for(o, S).output);
  EXPECT_LE(relative_error(a.weights.to_vector(), b.weights.to_vector()), budgets_for(o, S).weights);
  for (std::int64_t bb = 0; bb < 2; ++bb)
    for (std::int64_t i = 0; i < L; ++i)
      for (std::int64_t j = i + 1; j < S; ++j) EXPECT_EQ(a.weights(bb, i, j), 0.0f);
}

TEST(MultiHeadAttention, OneQueryBroadcastOverTheBatch) {
  // A single query position shared by every batch entry, passed as an expanded
  // (stride 0) view: (L = 1, B = 3, E). The row comes from a larger tensor so that a
  // kernel that ignores the zero stride reads wrong rows, not unallocated memory.
  MultiHeadAttentionOptions o;
  o.embed_dim = 8;
  o.num_heads = 2;
  MultiHeadAttention m(o);
  Rng rng(12);
  randomize(m, rng);
  const Tensor query = Tensor::randn({1, 4, 8}, rng).slice(1, 0, 1).expand({1, 3, 8});
  const Tensor kv = Tensor::randn({5, 3, 8}, rng);
  ASSERT_EQ(query.stride(1), 0);
  for (Kernel kernel : kKernels) {
    SCOPED_TRACE(attn::to_string(kernel));
    MultiHeadForwardOptions fo;
    fo.kernel = kernel;
    expect_matches_oracle(m, query, kv, kv, fo);
    // The same as the materialised query.
    const MultiHeadResult r = m.forward(query, kv, kv, fo);
    const MultiHeadResult dense = m.forward(query.clone(), kv, kv, fo);
    EXPECT_LE(relative_error(r.output.to_vector(), dense.output.to_vector()), budgets_for(o, 5).output);
  }
}

// ---- dropout ----------------------------------------------------------------------

TEST(MultiHeadAttention, DropoutOnlyInTrainingAndSeeded) {
  MultiHeadAttentionOptions o;
  o.embed_dim = 8;
  o.num_heads = 2;
  o.dropout = 0.5;
  o.batch_first = true;
  o.seed = 17;
  MultiHeadAttention m(o);
  EXPECT_TRUE(m.training()) << "modules start in training mode, as in torch";
  Rng rng(17);
  randomize(m, rng);
  const Tensor q = Tensor::randn({2, 5, 8}, rng);
  const Tensor kv = Tensor::randn({2, 6, 8}, rng);
  MultiHeadForwardOptions fo;
  fo.average_attn_weights = false;
  fo.key_padding_mask = BoolTensor::from({2, 6}, {false, false, false, false, false, true,  //
                                                  false, false, false, true, true, true});
  const mha::Result want = mha::multi_head_attention(m, q, kv, kv, fo);
  const Budgets budget = budgets_for(o, 6);

  // eval(): no dropout.
  m.eval();
  const MultiHeadResult eval = m.forward(q, kv, kv, fo);
  EXPECT_LE(relative_error(eval.output.to_vector(), want.output), budget.output);
  EXPECT_LE(relative_error(eval.weights.to_vector(), want.weights), budget.weights);
  EXPECT_EQ(m.forward(q, kv, kv, fo).output.to_vector(), eval.output.to_vector()) << "eval is deterministic";

  // train(): each weight is dropped (0) or kept and scaled by 1 / (1 - p) = 2.
  m.train();
  const MultiHeadResult train = m.forward(q, kv, kv, fo);
  ASSERT_EQ(train.weights.shape(), (Shape{2, 2, 5, 6}));
  const std::vector<float> got = train.weights.to_vector();
  std::vector<long double> scaled(got.size());
  std::int64_t kept = 0, dropped = 0;
  for (std::size_t x = 0; x < got.size(); ++x) {
    const long double w = want.weights[x];
    scaled[x] = got[x] == 0.0f ? 0.0L : 2 * w;
    if (w > 0) (got[x] == 0.0f ? dropped : kept) += 1;
  }
  // A kept weight not scaled by exactly 2 (or a masked one made nonzero) fails this.
  EXPECT_LE(relative_error(got, scaled), budget.weights);
  attn::test::expect_binomial_fraction(dropped, kept + dropped, 0.5, "dropped weights");
  // The output is the weighted sum with the dropped weights.
  const mha::Result with_dropped = mha::multi_head_attention(m, q, kv, kv, fo, &train.weights);
  EXPECT_LE(relative_error(train.output.to_vector(), with_dropped.output), budget.output);
  EXPECT_GT(relative_error(train.output.to_vector(), eval.output.to_vector()), budget.output)
      << "training output equals eval output";

  // The same seed and the same calls give the same masks; each call draws a fresh one.
  MultiHeadAttention twin(o);
  for (const auto& [name, t] : twin.named_parameters()) t.copy_from(parameter(m.named_parameters(), name));
  twin.eval();
  twin.forward(q, kv, kv, fo);
  twin.forward(q, kv, kv, fo);
  twin.train();
  const MultiHeadResult train_twin = twin.forward(q, kv, kv, fo);
  EXPECT_EQ(train_twin.weights.to_vector(), train.weights.to_vector());
  EXPECT_EQ(train_twin.output.to_vector(), train.output.to_vector());
  // The kept set does not depend on how the weights are returned: averaged, they are
  // the mean over heads of the same dropped weights.
  MultiHeadAttention averaged(o);
  for (const auto& [name, t] : averaged.named_parameters()) t.copy_from(parameter(m.named_parameters(), name));
  MultiHeadForwardOptions fo_mean = fo;
  fo_mean.average_attn_weights = true;
  const MultiHeadResult train_mean = averaged.forward(q, kv, kv, fo_mean);
  ASSERT_EQ(train_mean.weights.shape(), (Shape{2, 5, 6}));
  std::vector<long double> mean;
  for (std::int64_t b = 0; b < 2; ++b)
    for (std::int64_t i = 0; i < 5; ++i)
      for (std::int64_t j = 0; j < 6; ++j)
        mean.push_back((static_cast<long double>(train.weights(b, 0, i, j)) + train.weights(b, 1, i, j)) / 2);
  EXPECT_LE(relative_error(train_mean.weights.to_vector(), mean), budget.weights);
  EXPECT_LE(relative_error(train_mean.output.to_vector(), with_dropped.output), budget.output);
  const MultiHeadResult second = m.forward(q, kv, kv, fo);
  EXPECT_NE(second.weights.to_vector(), train.weights.to_vector());
}

// ---- fully masked rows ------------------------------------------------------------

TEST(MultiHeadAttention, FullyMaskedRowsGiveBiasAndZeroWeights) {
  MultiHeadAttentionOptions o;
  o.embed_dim = 8;
  o.num_heads = 2;
  MultiHeadAttention m(o);
  Rng rng(31);
  randomize(m, rng);
  const std::int64_t L = 3, B = 2, S = 4;
  const Tensor q = Tensor::randn({L, B, 8}, rng);
  const Tensor kv = Tensor::randn({S, B, 8}, rng);
  // Batch 1 has every key padded; query 0 of every batch is blocked from every key.
  const BoolTensor padding = BoolTensor::from({B, S}, {false, true, false, false, true, true, true, true});
  BoolTensor rows = BoolTensor::zeros({L, S});
  for (std::int64_t j = 0; j < S; ++j) rows(0, j) = true;
  Tensor padding_float = Tensor::zeros({B, S});
  Tensor rows_float = Tensor::zeros({L, S});
  for (std::int64_t b = 0; b < B; ++b)
    for (std::int64_t j = 0; j < S; ++j) padding_float(b, j) = padding(b, j) ? -kInf : 0.0f;
  for (std::int64_t j = 0; j < S; ++j) rows_float(0, j) = -kInf;
  const auto empty_row = [&](std::int64_t i, std::int64_t b) { return b == 1 || i == 0; };

  std::vector<MultiHeadForwardOptions> variants(4);
  variants[0].key_padding_mask = padding;
  variants[0].attn_mask = rows;
  variants[1].key_padding_mask = padding_float;
  variants[1].attn_mask = rows_float;
  variants[2].valid_lens = IndexTensor::from({B}, {3, 0});
  variants[2].attn_mask = rows;
  variants[3].valid_lens = IndexTensor::from({B, L}, {0, 2, 4, 0, 0, 0});
  for (std::size_t v = 0; v < variants.size(); ++v) {
    for (Kernel kernel : kKernels) {
      SCOPED_TRACE("variant " + std::to_string(v) + ", " + attn::to_string(kernel));
      MultiHeadForwardOptions fo = variants[v];
      fo.kernel = kernel;
      fo.average_attn_weights = false;
      const MultiHeadResult r = m.forward(q, kv, kv, fo);
      expect_finite(r.output, "output");
      expect_finite(r.weights, "weights");
      for (std::int64_t i = 0; i < L; ++i)
        for (std::int64_t b = 0; b < B; ++b) {
          if (!empty_row(i, b)) continue;
          for (std::int64_t e = 0; e < 8; ++e)
            EXPECT_EQ(r.output(i, b, e), m.out_proj_bias(e)) << "row (" << i << ", " << b << ")";
          for (std::int64_t h = 0; h < 2; ++h)
            for (std::int64_t j = 0; j < S; ++j) EXPECT_EQ(r.weights(b, h, i, j), 0.0f);
        }
      expect_matches_oracle(m, q, kv, kv, fo);
    }
  }

  // Without biases an empty row is zero.
  o.bias = false;
  MultiHeadAttention unbiased(o);
  MultiHeadForwardOptions fo;
  fo.key_padding_mask = padding;
  const MultiHeadResult r = unbiased.forward(q, kv, kv, fo);
  for (std::int64_t i = 0; i < L; ++i)
    for (std::int64_t e = 0; e < 8; ++e) EXPECT_EQ(r.output(i, 1, e), 0.0f);
  for (float w : r.weights.select(0, 1).to_vector()) EXPECT_EQ(w, 0.0f);
}

TEST(MultiHeadAttention, BiasKvKeepsPaddedRowsAlive) {
  // With add_bias_kv a row whose real keys are all padded still sees bias_k: its
  // output is out_proj(bias_v) + out_proj.bias.
  MultiHeadAttentionOptions o;
  o.embed_dim = 4;
  o.num_heads = 2;
  o.add_bias_kv = true;
  MultiHeadAttention m(o);
  Rng rng(32);
  randomize(m, rng);
  const Tensor q = Tensor::randn({2, 1, 4}, rng);
  const Tensor kv = Tensor::randn({3, 1, 4}, rng);
  MultiHeadForwardOptions fo;
  fo.key_padding_mask = BoolTensor::full({1, 3}, true);
  const MultiHeadResult r = m.forward(q, kv, kv, fo);
  ASSERT_EQ(r.weights.shape(), (Shape{1, 2, 4}));
  ASSERT_EQ(r.output.shape(), (Shape{2, 1, 4}));
  std::vector<long double> want;  // (L, B, E) = (2, 1, 4)
  // Each row's whole weight on bias_k, the real keys exactly 0.
  EXPECT_LE(relative_error(r.weights.to_vector(), std::vector<long double>{0, 0, 0, 1, 0, 0, 0, 1}),
            budgets_for(o, 4).weights);
  for (std::int64_t i = 0; i < 2; ++i) {
    for (std::int64_t j = 0; j < 3; ++j) EXPECT_EQ(r.weights(0, i, j), 0.0f);
    for (std::int64_t e = 0; e < 4; ++e) {
      long double y = m.out_proj_bias(e);
      for (std::int64_t p = 0; p < 4; ++p) y += static_cast<long double>(m.bias_v(0, 0, p)) * m.out_proj_weight(e, p);
      want.push_back(y);
    }
  }
  EXPECT_LE(relative_error(r.output.to_vector(), want), budgets_for(o, 4).output);
  expect_matches_oracle(m, q, kv, kv, fo);
}

// ---- parameters -------------------------------------------------------------------

namespace {

// Every entry within [-bound, bound] and some near the edge, as n draws of
// U(-bound, bound) are but for a six-sigma chance (test_util.hpp).
void expect_uniform_within(const Tensor& t, double bound, const std::string& name) {
  double max_abs = 0;
  for (float w : t.to_vector()) {
    EXPECT_LE(std::abs(w), bound) << name;
    max_abs = std::max(max_abs, static_cast<double>(std::abs(w)));
  }
  EXPECT_GT(max_abs, attn::test::uniform_max_fraction(t.numel()) * bound)
      << name << " does not spread over its range";
}

void expect_zero(const Tensor& t, const std::string& name) {
  for (float w : t.to_vector()) EXPECT_EQ(w, 0.0f) << name;
}

}  // namespace

TEST(MultiHeadAttention, PackedParametersAndInit) {
  MultiHeadAttentionOptions o;
  o.embed_dim = 8;
  o.num_heads = 2;
  MultiHeadAttention m(o);
  EXPECT_TRUE(m.packed_in_proj());
  const attn::NamedParameters params = m.named_parameters();
  EXPECT_THAT(names_of(params), ElementsAre("in_proj_weight", "in_proj_bias", "out_proj.weight", "out_proj.bias"));
  EXPECT_EQ(parameter(params, "in_proj_weight").shape(), (Shape{24, 8}));
  EXPECT_EQ(parameter(params, "in_proj_bias").shape(), (Shape{24}));
  EXPECT_EQ(parameter(params, "out_proj.weight").shape(), (Shape{8, 8}));
  EXPECT_EQ(parameter(params, "out_proj.bias").shape(), (Shape{8}));
  // xavier_uniform on (3E, E): bound sqrt(6 / (3E + E)); out_proj U(+-1/sqrt(E)); biases 0.
  expect_uniform_within(m.in_proj_weight, std::sqrt(6.0 / 32), "in_proj_weight");
  expect_uniform_within(m.out_proj_weight, 1 / std::sqrt(8.0), "out_proj.weight");
  expect_zero(m.in_proj_bias, "in_proj_bias");
  expect_zero(m.out_proj_bias, "out_proj.bias");
  EXPECT_FALSE(m.q_proj_weight.defined());
  EXPECT_FALSE(m.bias_k.defined());

  // The handles share storage with the module.
  parameter(params, "in_proj_bias").fill(0.25f);
  for (float b : m.in_proj_bias.to_vector()) EXPECT_EQ(b, 0.25f);
  parameter(params, "out_proj.weight").copy_from(Tensor::full({8, 8}, 0.5f));
  EXPECT_EQ(m.out_proj_weight(3, 4), 0.5f);

  // Same seed, same parameters; another seed, others.
  MultiHeadAttention same(o);
  o.seed = 1;
  MultiHeadAttention other(o);
  MultiHeadAttention fresh(MultiHeadAttentionOptions{.embed_dim = 8, .num_heads = 2});
  EXPECT_EQ(same.in_proj_weight.to_vector(), fresh.in_proj_weight.to_vector());
  EXPECT_NE(other.in_proj_weight.to_vector(), fresh.in_proj_weight.to_vector());
}

TEST(MultiHeadAttention, SeparateParametersAndInit) {
  MultiHeadAttentionOptions o;
  o.embed_dim = 8;
  o.num_heads = 4;
  o.kdim = 5;
  o.vdim = 3;
  o.add_bias_kv = true;
  MultiHeadAttention m(o);
  EXPECT_FALSE(m.packed_in_proj());
  const attn::NamedParameters params = m.named_parameters();
  EXPECT_THAT(names_of(params), ElementsAre("q_proj_weight", "k_proj_weight", "v_proj_weight", "in_proj_bias",
                                            "bias_k", "bias_v", "out_proj.weight", "out_proj.bias"));
  EXPECT_FALSE(m.in_proj_weight.defined());
  EXPECT_EQ(parameter(params, "q_proj_weight").shape(), (Shape{8, 8}));
  EXPECT_EQ(parameter(params, "k_proj_weight").shape(), (Shape{8, 5}));
  EXPECT_EQ(parameter(params, "v_proj_weight").shape(), (Shape{8, 3}));
  EXPECT_EQ(parameter(params, "in_proj_bias").shape(), (Shape{24}));
  EXPECT_EQ(parameter(params, "bias_k").shape(), (Shape{1, 1, 8}));
  EXPECT_EQ(parameter(params, "bias_v").shape(), (Shape{1, 1, 8}));
  expect_uniform_within(m.q_proj_weight, std::sqrt(6.0 / 16), "q_proj_weight");
  expect_uniform_within(m.k_proj_weight, std::sqrt(6.0 / 13), "k_proj_weight");
  expect_uniform_within(m.v_proj_weight, std::sqrt(6.0 / 11), "v_proj_weight");
  expect_zero(m.in_proj_bias, "in_proj_bias");
  for (const Tensor& t : {m.bias_k, m.bias_v}) {
    expect_finite(t, "bias_k / bias_v");
    double norm = 0;
    for (float x : t.to_vector()) norm += static_cast<double>(x) * x;
    EXPECT_GT(norm, 0.0) << "bias_k / bias_v are drawn (xavier_normal), not zero";
  }

  // bias = false: no in_proj_bias and no out_proj.bias, as torch.
  o.bias = false;
  o.add_bias_kv = false;
  EXPECT_THAT(names_of(MultiHeadAttention(o).named_parameters()),
              ElementsAre("q_proj_weight", "k_proj_weight", "v_proj_weight", "out_proj.weight"));
  // out_proj = false: no output map.
  o.out_proj = false;
  EXPECT_THAT(names_of(MultiHeadAttention(o).named_parameters()),
              ElementsAre("q_proj_weight", "k_proj_weight", "v_proj_weight"));
}

// ---- errors -----------------------------------------------------------------------

TEST(MultiHeadAttention, ConstructionErrors) {
  MultiHeadAttentionOptions o;
  o.embed_dim = 10;
  o.num_heads = 3;
  const std::string message = error_of([&] { MultiHeadAttention m(o); });
  EXPECT_THAT(message, HasSubstr("MultiHeadAttention"));
  EXPECT_THAT(message, HasSubstr("num_heads"));
  EXPECT_THAT(message, HasSubstr("3"));
  EXPECT_THAT(message, HasSubstr("10"));

  o.embed_dim = 8;
  o.num_heads = 2;
  o.v_proj_dim = 5;  // divisible query/key width, indivisible value width
  EXPECT_THAT(error_of([&] { MultiHeadAttention m(o); }), HasSubstr("num_heads"));
}

TEST(MultiHeadAttention, ConstructionRejectsNonPositiveProjectedWidths) {
  for (std::int64_t bad : {0, -4}) {
    SCOPED_TRACE("width " + std::to_string(bad));
    MultiHeadAttentionOptions o;
    o.embed_dim = 8;
    o.num_heads = 2;
    o.qk_proj_dim = bad;  // divisible by num_heads, so only the sign check can catch it
    EXPECT_THAT(error_of([&] { MultiHeadAttention m(o); }),
                HasSubstrs({"MultiHeadAttention", "qk_proj_dim", std::to_string(bad)}));
    o.qk_proj_dim.reset();
    o.v_proj_dim = bad;
    EXPECT_THAT(error_of([&] { MultiHeadAttention m(o); }),
                HasSubstrs({"MultiHeadAttention", "v_proj_dim", std::to_string(bad)}));
    o.v_proj_dim.reset();
    o.kdim = bad;
    EXPECT_THAT(error_of([&] { MultiHeadAttention m(o); }), HasSubstrs({"MultiHeadAttention", "kdim"}));
  }
}

TEST(MultiHeadAttention, DropoutIsAProbabilityOneIncluded) {
  MultiHeadAttentionOptions o;
  o.embed_dim = 8;
  o.num_heads = 2;
  for (double p : {0.0, 0.5, 1.0}) {
    o.dropout = p;
    EXPECT_NO_THROW(MultiHeadAttention m(o)) << "dropout " << p;
  }
  for (double p : {-0.1, 1.5, std::nan("")}) {
    o.dropout = p;
    EXPECT_THAT(error_of([&] { MultiHeadAttention m(o); }), HasSubstrs({"MultiHeadAttention", "dropout"}))
        << "dropout " << p;
  }
  // p = 1 in training drops every weight: each output row is out_proj.bias.
  o.dropout = 1.0;
  MultiHeadAttention m(o);
  Rng rng(41);
  randomize(m, rng);
  const Tensor q = Tensor::randn({3, 2, 8}, rng), kv = Tensor::randn({4, 2, 8}, rng);
  const MultiHeadResult r = m.forward(q, kv, kv);
  for (float w : r.weights.to_vector()) EXPECT_EQ(w, 0.0f);
  for (std::int64_t i = 0; i < 3; ++i)
    for (std::int64_t b = 0; b < 2; ++b)
      for (std::int64_t e = 0; e < 8; ++e) EXPECT_EQ(r.output(i, b, e), m.out_proj_bias(e));
  // And in eval() nothing is dropped.
  m.eval();
  expect_matches_oracle(m, q, kv, kv, {});
}

TEST(MultiHeadAttention, ForwardErrorsNameTheArgumentAndShapes) {
  MultiHeadAttentionOptions o;
  o.embed_dim = 8;
  o.num_heads = 2;
  o.kdim = 5;
  o.vdim = 3;
  MultiHeadAttention m(o);
  const Tensor q = Tensor::zeros({3, 2, 8}), k = Tensor::zeros({5, 2, 5}), v = Tensor::zeros({5, 2, 3});
  ASSERT_NO_THROW(m.forward(q, k, v));

  const auto expect_error = [&](const Tensor& query, const Tensor& key, const Tensor& value,
                                const MultiHeadForwardOptions& fo, const std::vector<std::string>& parts) {
    const std::string message = error_of([&] { m.forward(query, key, value, fo); });
    for (const std::string& part : parts) EXPECT_THAT(message, HasSubstr(part));
  };
  const MultiHeadForwardOptions none;
  // Widths.
  expect_error(Tensor::zeros({3, 2, 7}), k, v, none, {"MultiHeadAttention", "query", "(3, 2, 7)", "8"});
  expect_error(q, Tensor::zeros({5, 2, 4}), v, none, {"MultiHeadAttention", "key", "(5, 2, 4)", "5"});
  expect_error(q, k, Tensor::zeros({5, 2, 2}), none, {"MultiHeadAttention", "value", "(5, 2, 2)", "3"});
  // Batch and length.
  expect_error(q, Tensor::zeros({5, 3, 5}), Tensor::zeros({5, 3, 3}), none,
               {"MultiHeadAttention", "batch", "(3, 2, 8)", "(5, 3, 5)"});
  expect_error(q, k, Tensor::zeros({4, 2, 3}), none, {"MultiHeadAttention", "(5, 2, 5)", "(4, 2, 3)"});
  // Ranks.
  expect_error(q, Tensor::zeros({5, 5}), Tensor::zeros({5, 3}), none, {"MultiHeadAttention", "(5, 5)"});

  // key_padding_mask must be (B, S).
  MultiHeadForwardOptions fo;
  fo.key_padding_mask = BoolTensor::zeros({2, 4});
  expect_error(q, k, v, fo, {"MultiHeadAttention", "key_padding_mask", "(2, 4)", "(2, 5)"});
  fo.key_padding_mask = Tensor::zeros({5, 2});
  expect_error(q, k, v, fo, {"MultiHeadAttention", "key_padding_mask", "(5, 2)", "(2, 5)"});
  // attn_mask must be (L, S) or (B * H, L, S).
  fo = {};
  fo.attn_mask = BoolTensor::zeros({3, 4});
  expect_error(q, k, v, fo, {"MultiHeadAttention", "attn_mask", "(3, 4)", "(3, 5)", "(4, 3, 5)"});
  fo.attn_mask = Tensor::zeros({2, 3, 5});
  expect_error(q, k, v, fo, {"MultiHeadAttention", "attn_mask", "(2, 3, 5)", "(4, 3, 5)"});
  fo.attn_mask = BoolTensor::zeros({1, 3, 5});
  expect_error(q, k, v, fo, {"attn_mask", "(1, 3, 5)"});
  // valid_lens within [0, S], shaped (B) or (B, L).
  fo = {};
  fo.valid_lens = IndexTensor::from({2}, {6, 1});
  expect_error(q, k, v, fo, {"valid_lens", "6"});
  fo.valid_lens = IndexTensor::from({2}, {-1, 1});
  expect_error(q, k, v, fo, {"valid_lens", "-1"});
  fo.valid_lens = IndexTensor::from({3}, {1, 1, 1});
  expect_error(q, k, v, fo, {"valid_lens", "(3)"});

  // The same checks with extra keys appended (the masks are padded internally).
  o.add_bias_kv = o.add_zero_attn = true;
  MultiHeadAttention extra(o);
  fo = {};
  fo.valid_lens = IndexTensor::from({2}, {6, 1});
  EXPECT_THAT(error_of([&] { extra.forward(q, k, v, fo); }), HasSubstr("valid_lens"));
  fo = {};
  fo.attn_mask = BoolTensor::zeros({3, 7});
  EXPECT_THAT(error_of([&] { extra.forward(q, k, v, fo); }), HasSubstr("(3, 7)"));
}
