// attn::scaled_dot_product_attention (and _into, dot_product_attention) against
// the long-double oracle, over shapes, masks, GQA ratios, strides, dropout and
// the error paths.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <string>
#include <utility>
#include <vector>

#include "attn/ops.hpp"
#include "oracle.hpp"
#include "test_util.hpp"
#include "tolerance.hpp"

using attn::Align;
using attn::AttentionResult;
using attn::BoolTensor;
using attn::IndexTensor;
using attn::Mask;
using attn::MaskFill;
using attn::Rng;
using attn::SdpaOptions;
using attn::Shape;
using attn::Tensor;
using attn::test::AllowedFn;
using attn::test::BiasFn;
using attn::test::error_of;
using attn::test::expect_lse;
using attn::test::expect_no_nan;
using attn::test::HasSubstrs;
using attn::test::Index;
using attn::test::kAllowAll;
using attn::test::kInf;
using attn::test::kNoBias;
using attn::test::kReferenceBudget;
using attn::test::OracleResult;
using attn::test::random_bias;
using attn::test::random_bools;
using attn::test::randn;
using attn::test::relative_error;
using ::testing::HasSubstr;

namespace {

// The error budget of the kernel that ran: the reference rounds once from
// double; the fused kernel accumulates in float over Dk, then Lk.
double budget_for(const AttentionResult& r, Index Dk, Index Lk) {
  return r.kernel == attn::Kernel::reference ? kReferenceBudget
                                             : attn::test::fused_attention_budget(Dk, Lk);
}

// 3-D (B, L, D) is one head: the oracle reads it as (B, 1, L, D).
Tensor as_heads(const Tensor& t) { return t.rank() == 3 ? t.unsqueeze(1) : t; }

// Runs sdpa with and without weights and checks out, lse and weights against
// the oracle; rows with nothing allowed are exactly zero; no NaN anywhere.
// Returns the result with weights.
AttentionResult expect_matches_oracle(const Tensor& q, const Tensor& k, const Tensor& v,
                                      SdpaOptions options, const AllowedFn& allowed,
                                      const BiasFn& bias, const std::string& label) {
  const Index Dk = q.size(-1), Lk = k.size(-2), Dv = v.size(-1);
  const long double scale = options.scale ? static_cast<long double>(*options.scale)
                                          : 1.0L / std::sqrt(static_cast<long double>(Dk));
  const OracleResult want =
      attn::test::oracle_attention(as_heads(q), as_heads(k), as_heads(v), scale, allowed, bias,
                                   options.fill);

  options.need_weights = false;
  const AttentionResult plain = attn::scaled_dot_product_attention(q, k, v, options);
  options.need_weights = true;
  const AttentionResult r = attn::scaled_dot_product_attention(q, k, v, options);
  const double budget = budget_for(r, Dk, Lk);

  Shape out_shape = q.shape();
  out_shape.back() = Dv;
  EXPECT_EQ(r.out.shape(), out_shape) << label;
  Shape w_shape = q.shape();
  w_shape.back() = Lk;
  EXPECT_EQ(r.weights.shape(), w_shape) << label;
  EXPECT_EQ(r.lse.shape(), Shape(q.shape().begin(), q.shape().end() - 1)) << label;
  EXPECT_FALSE(plain.weights.defined() && plain.weights.numel() > 0)
      << label << ": weights returned without need_weights";

  const std::vector<float> out = r.out.to_vector(), weights = r.weights.to_vector();
  expect_no_nan(out, label + " out");
  expect_no_nan(weights, label + " weights");
  expect_no_nan(r.lse.to_vector(), label + " lse");
  EXPECT_LE(relative_error(out, want.out), budget) << label << ": out";
  EXPECT_LE(relative_error(plain.out.to_vector(), want.out), budget) << label << ": out (no weights)";
  EXPECT_LE(relative_error(weights, want.weights), budget) << label << ": weights";
  expect_lse(r.lse, want.lse, budget, label);

  // Rows with nothing allowed: zero output and weights, exactly.
  for (std::size_t row = 0; row < want.lse.size(); ++row) {
    if (!std::isinf(want.lse[row])) continue;
    for (Index d = 0; d < Dv; ++d)
      EXPECT_EQ(out[row * Dv + d], 0.0f) << label << ": empty row " << row << " out[" << d << "]";
    for (Index j = 0; j < Lk; ++j)
      EXPECT_EQ(weights[row * Lk + j], 0.0f) << label << ": empty row " << row << " weight " << j;
  }
  return r;
}

// Under MaskFill::neg_inf: each weight row sums to 1 over its allowed keys (mask
// and finite bias) and is exactly 0 elsewhere; rows with none allowed are 0.
void expect_weight_rows(const Tensor& weights4, const AllowedFn& allowed, const BiasFn& bias,
                        double budget, const std::string& label) {
  const Index B = weights4.size(0), H = weights4.size(1), Lq = weights4.size(2),
              Lk = weights4.size(3);
  for (Index b = 0; b < B; ++b)
    for (Index h = 0; h < H; ++h)
      for (Index i = 0; i < Lq; ++i) {
        double sum = 0;
        bool any = false;
        for (Index j = 0; j < Lk; ++j) {
          const float w = weights4(b, h, i, j);
          if (allowed(b, h, i, j) && !std::isinf(bias(b, h, i, j))) {
            sum += w;
            any = true;
          } else {
            EXPECT_EQ(w, 0.0f) << label << ": masked weight at " << b << "," << h << "," << i << ","
                               << j;
          }
        }
        EXPECT_NEAR(sum, any ? 1.0 : 0.0, budget)
            << label << ": row " << b << "," << h << "," << i;
      }
}

struct Dims {
  Index B, Hq, Hkv, Lq, Lk, Dk, Dv;
};

std::string describe(const Dims& d) {
  return "B" + std::to_string(d.B) + " Hq" + std::to_string(d.Hq) + " Hkv" + std::to_string(d.Hkv) +
         " Lq" + std::to_string(d.Lq) + " Lk" + std::to_string(d.Lk) + " Dk" + std::to_string(d.Dk) +
         " Dv" + std::to_string(d.Dv);
}

struct Qkv {
  Tensor q, k, v;
};

Qkv make_qkv(const Dims& d, std::uint64_t seed) {
  return {randn({d.B, d.Hq, d.Lq, d.Dk}, seed), randn({d.B, d.Hkv, d.Lk, d.Dk}, seed + 1),
          randn({d.B, d.Hkv, d.Lk, d.Dv}, seed + 2)};
}

// A mask with its independent predicate and bias, written from the header's
// definition of each term.
struct MaskCase {
  std::string name;
  Mask mask;
  AllowedFn allowed = kAllowAll;
  BiasFn bias = kNoBias;
};

std::vector<MaskCase> mask_cases(Index B, Index H, Index Lq, Index Lk, std::uint64_t seed) {
  Rng rng(seed);
  const Index shift = Lk - Lq;  // bottom_right diagonal offset
  std::vector<MaskCase> cases;
  cases.push_back({"none", Mask{}});
  cases.push_back({"causal top_left", Mask::causal(Align::top_left),
                   [](Index, Index, Index i, Index j) { return j <= i; }});
  cases.push_back({"causal bottom_right", Mask::causal(Align::bottom_right),
                   [=](Index, Index, Index i, Index j) { return j <= i + shift; }});

  std::vector<std::int64_t> per_batch(B);
  for (Index b = 0; b < B; ++b) per_batch[b] = (b * 3 + 2) % (Lk + 1);
  cases.push_back({"lengths 1-D", Mask::lengths(per_batch),
                   [=](Index b, Index, Index, Index j) { return j < per_batch[b]; }});

  IndexTensor per_query = IndexTensor::zeros({B, Lq});
  per_query.for_each([&](std::int64_t& x) { x = static_cast<std::int64_t>(rng.uniform() * (Lk + 1)); });
  cases.push_back({"lengths 2-D", Mask::lengths(per_query),
                   [=](Index b, Index, Index i, Index j) { return j < per_query(b, i); }});

  cases.push_back({"sliding_window(2, 1) top_left", Mask::sliding_window(2, 1),
                   [](Index, Index, Index i, Index j) { return i - 2 <= j && j <= i + 1; }});
  cases.push_back({"sliding_window(1, 0) bottom_right", Mask::sliding_window(1, 0, Align::bottom_right),
                   [=](Index, Index, Index i, Index j) {
                     return i + shift - 1 <= j && j <= i + shift;
                   }});

  const BoolTensor keep_lq_lk = random_bools({Lq, Lk}, 0.7, rng);
  cases.push_back({"dense keep (Lq, Lk)", Mask::keep(keep_lq_lk),
                   [=](Index, Index, Index i, Index j) { return keep_lq_lk(i, j); }});
  const BoolTensor pad = random_bools({B, 1, 1, Lk}, 0.3, rng);
  cases.push_back({"dense block (B, 1, 1, Lk)", Mask::block(pad),
                   [=](Index b, Index, Index, Index j) { return !pad(b, 0, 0, j); }});
  const BoolTensor per_head = random_bools({H, Lq, 1}, 0.8, rng);
  cases.push_back({"dense keep (H, Lq, 1)", Mask::dense(per_head, attn::Polarity::keep),
                   [=](Index, Index h, Index i, Index) { return per_head(h, i, 0); }});
  const BoolTensor full_block = random_bools({B, H, Lq, Lk}, 0.4, rng);
  cases.push_back({"dense block (B, H, Lq, Lk)", Mask::dense(full_block, attn::Polarity::block),
                   [=](Index b, Index h, Index i, Index j) { return !full_block(b, h, i, j); }});

  const Tensor bias_full = random_bias({B, H, Lq, Lk}, 0.2, rng);
  cases.push_back({"bias (B, H, Lq, Lk) with -inf", Mask::bias(bias_full), kAllowAll,
                   [=](Index b, Index h, Index i, Index j) { return bias_full(b, h, i, j); }});
  const Tensor bias_lq_lk = Tensor::randn({Lq, Lk}, rng);
  cases.push_back({"bias (Lq, Lk)", Mask::bias(bias_lq_lk), kAllowAll,
                   [=](Index, Index, Index i, Index j) { return bias_lq_lk(i, j); }});

  cases.push_back({"causal & lengths & bias",
                   Mask::causal() & Mask::lengths(per_batch) & Mask::bias(bias_full),
                   [=](Index b, Index, Index i, Index j) { return j <= i && j < per_batch[b]; },
                   [=](Index b, Index h, Index i, Index j) { return bias_full(b, h, i, j); }});
  cases.push_back({"bottom_right causal & window & block & 2-D lengths",
                   Mask::causal(Align::bottom_right) & Mask::sliding_window(3) & Mask::block(pad) &
                       Mask::lengths(per_query),
                   [=](Index b, Index, Index i, Index j) {
                     return j <= i + shift && i - 3 <= j && j <= i && !pad(b, 0, 0, j) &&
                            j < per_query(b, i);
                   }});
  cases.push_back({"two dense & two biases",
                   Mask::keep(keep_lq_lk) & Mask::block(full_block) & Mask::bias(bias_lq_lk) &
                       Mask::bias(bias_full),
                   [=](Index b, Index h, Index i, Index j) {
                     return keep_lq_lk(i, j) && !full_block(b, h, i, j);
                   },
                   [=](Index b, Index h, Index i, Index j) {
                     return static_cast<long double>(bias_lq_lk(i, j)) + bias_full(b, h, i, j);
                   }});
  return cases;
}

// The message names the op and contains every one of `parts`.
void expect_error(const std::string& msg, std::vector<std::string> parts) {
  parts.push_back("[scaled_dot_product_attention]");
  EXPECT_THAT(msg, HasSubstrs(parts));
}

}  // namespace

// ---- values against the oracle -------------------------------------------------------

TEST(ScaledDotProductAttention, RandomShapes4D) {
  const std::vector<Dims> shapes = {
      {1, 1, 1, 1, 1, 1, 1},      {2, 2, 2, 1, 7, 8, 8},    {1, 2, 1, 65, 65, 16, 16},
      {2, 1, 1, 5, 9, 4, 6},      {1, 3, 3, 9, 4, 33, 7},   {2, 4, 2, 17, 31, 64, 3},
      {1, 1, 1, 70, 3, 5, 64},    {3, 2, 2, 2, 1, 3, 2},
  };
  std::uint64_t seed = 100;
  for (const Dims& d : shapes) {
    const Qkv x = make_qkv(d, seed += 10);
    expect_matches_oracle(x.q, x.k, x.v, {}, kAllowAll, kNoBias, describe(d));
  }
}

TEST(ScaledDotProductAttention, RandomShapes3D) {
  const std::vector<Dims> shapes = {
      {1, 1, 1, 1, 1, 2, 2}, {2, 1, 1, 3, 5, 4, 4}, {3, 1, 1, 65, 7, 9, 5}, {1, 1, 1, 6, 65, 64, 1}};
  std::uint64_t seed = 200;
  for (const Dims& d : shapes) {
    const Tensor q = randn({d.B, d.Lq, d.Dk}, seed += 10);
    const Tensor k = randn({d.B, d.Lk, d.Dk}, seed + 1);
    const Tensor v = randn({d.B, d.Lk, d.Dv}, seed + 2);
    const AttentionResult r = expect_matches_oracle(q, k, v, {}, kAllowAll, kNoBias, describe(d));
    EXPECT_EQ(r.out.shape(), (Shape{d.B, d.Lq, d.Dv}));
    EXPECT_EQ(r.lse.shape(), (Shape{d.B, d.Lq}));
    EXPECT_EQ(r.weights.shape(), (Shape{d.B, d.Lq, d.Lk}));
  }
}

TEST(ScaledDotProductAttention, EveryMaskKindAndCombination) {
  // Wide (Lq < Lk) and tall (Lq > Lk, so bottom_right leaves empty rows).
  const std::vector<Dims> shapes = {{2, 4, 2, 6, 9, 8, 5}, {2, 2, 1, 9, 6, 5, 7}};
  std::uint64_t seed = 300;
  for (const Dims& d : shapes) {
    const Qkv x = make_qkv(d, seed += 10);
    for (const MaskCase& c : mask_cases(d.B, d.Hq, d.Lq, d.Lk, seed + 5)) {
      for (MaskFill fill : {MaskFill::neg_inf, MaskFill::d2l}) {
        SdpaOptions o;
        o.mask = c.mask;
        o.fill = fill;
        const std::string label = describe(d) + " mask " + c.name +
                                  (fill == MaskFill::d2l ? " fill d2l" : " fill neg_inf");
        const AttentionResult r = expect_matches_oracle(x.q, x.k, x.v, o, c.allowed, c.bias, label);
        if (fill == MaskFill::neg_inf)
          expect_weight_rows(r.weights, c.allowed, c.bias, budget_for(r, d.Dk, d.Lk), label);
      }
    }
  }
}

TEST(ScaledDotProductAttention, MaskWithAppendedUnmaskedKeys) {
  // The terms speak of the first Lk - n keys; the n appended keys are open to every
  // query and get no bias (MultiHeadAttention's add_bias_kv / add_zero_attn keys).
  const Dims d{2, 2, 1, 5, 8, 4, 3};
  const Index n = 2, S = d.Lk - n;
  const Qkv x = make_qkv(d, 380);
  Rng rng(381);
  const Tensor bias = Tensor::randn({d.B, d.Hq, d.Lq, S}, rng);  // finite
  const Index shift = S - d.Lq;
  const std::vector<std::int64_t> lens = {0, 4};
  const std::vector<MaskCase> cases = {
      {"bias", Mask::bias(bias).append_unmasked_keys(n), kAllowAll,
       [=](Index b, Index h, Index i, Index j) { return j < S ? bias(b, h, i, j) : 0.0L; }},
      {"causal bottom_right", Mask::causal(Align::bottom_right).append_unmasked_keys(n),
       [=](Index, Index, Index i, Index j) { return j >= S || j <= i + shift; }},
      {"sliding_window(1, 0) bottom_right", Mask::sliding_window(1, 0, Align::bottom_right).append_unmasked_keys(n),
       [=](Index, Index, Index i, Index j) { return j >= S || (i + shift - 1 <= j && j <= i + shift); }},
      {"lengths with an empty row", Mask::lengths(lens).append_unmasked_keys(n),
       [=](Index b, Index, Index, Index j) { return j >= S || j < lens[b]; }},
  };
  for (const MaskCase& c : cases) {
    for (MaskFill fill : {MaskFill::neg_inf, MaskFill::d2l}) {
      SdpaOptions o;
      o.mask = c.mask;
      o.fill = fill;
      const std::string label = "appended " + c.name + (fill == MaskFill::d2l ? " fill d2l" : " fill neg_inf");
      const AttentionResult r = expect_matches_oracle(x.q, x.k, x.v, o, c.allowed, c.bias, label);
      if (fill == MaskFill::neg_inf)
        expect_weight_rows(r.weights, c.allowed, c.bias, budget_for(r, d.Dk, d.Lk), label);
    }
  }
}

TEST(ScaledDotProductAttention, SlidingWindowOfInt64MaxSizes) {
  // Windows wider than any sequence reach the kernels without overflowing p - left
  // or p + right.
  constexpr Index kMax = std::numeric_limits<Index>::max();
  const Dims d{2, 2, 2, 5, 7, 4, 3};
  const Qkv x = make_qkv(d, 390);
  const Index shift = d.Lk - d.Lq;
  const std::vector<MaskCase> cases = {
      {"window(max, max)", Mask::sliding_window(kMax, kMax), kAllowAll},
      {"window(max, max) bottom_right", Mask::sliding_window(kMax, kMax, Align::bottom_right), kAllowAll},
      {"window(max, 0) top_left", Mask::sliding_window(kMax, 0),
       [](Index, Index, Index i, Index j) { return j <= i; }},
      {"window(max, 0) bottom_right", Mask::sliding_window(kMax, 0, Align::bottom_right),
       [=](Index, Index, Index i, Index j) { return j <= i + shift; }},
      {"window(0, max) bottom_right", Mask::sliding_window(0, kMax, Align::bottom_right),
       [=](Index, Index, Index i, Index j) { return j >= i + shift; }},
  };
  for (const MaskCase& c : cases) {
    SdpaOptions o;
    o.mask = c.mask;
    expect_matches_oracle(x.q, x.k, x.v, o, c.allowed, c.bias, c.name);
  }
}

TEST(ScaledDotProductAttention, MasksOn3DInputs) {
  const Tensor q = randn({2, 5, 4}, 401), k = randn({2, 7, 4}, 402), v = randn({2, 7, 3}, 403);
  const Tensor bias = Tensor::from({1, 7}, {0, -kInf, 1, 0, 0, -2, 0});
  SdpaOptions o;
  o.mask = Mask::causal(Align::bottom_right) & Mask::lengths(std::vector<std::int64_t>{4, 7}) &
           Mask::bias(bias);
  expect_matches_oracle(q, k, v, o,
                        [](Index b, Index, Index i, Index j) { return j <= i + 2 && j < (b ? 7 : 4); },
                        [&](Index, Index, Index, Index j) { return bias(0, j); }, "3-D masked");
}

TEST(ScaledDotProductAttention, GroupedQueryHeads) {
  // Query head h reads key/value head h / (Hq / Hkv).
  for (Index Hq : {1, 2, 4, 8})
    for (Index Hkv : {1, 2, 4, 8}) {
      if (Hkv > Hq || Hq % Hkv != 0) continue;
      const Dims d{2, Hq, Hkv, 5, 6, 4, 3};
      const Qkv x = make_qkv(d, 500 + Hq * 10 + Hkv);
      SdpaOptions o;
      o.mask = Mask::causal(Align::bottom_right);
      const AttentionResult r = expect_matches_oracle(
          x.q, x.k, x.v, o, [](Index, Index, Index i, Index j) { return j <= i + 1; }, kNoBias,
          describe(d));
      // Each query head alone, against its kv head as one-head 3-D attention.
      const Index group = Hq / Hkv;
      for (Index h = 0; h < Hq; ++h) {
        SdpaOptions one;
        one.mask = o.mask;
        const AttentionResult single = attn::scaled_dot_product_attention(
            x.q.select(1, h), x.k.select(1, h / group), x.v.select(1, h / group), one);
        EXPECT_LE(relative_error(r.out.select(1, h).to_vector(), single.out.to_vector()),
                  budget_for(r, d.Dk, d.Lk))
            << describe(d) << ": head " << h << " must read kv head " << h / group;
      }
    }
}

TEST(ScaledDotProductAttention, ScaleOverride) {
  const Dims d{2, 2, 2, 4, 6, 8, 3};
  const Qkv x = make_qkv(d, 600);
  for (double scale : {0.37, 2.0, 1.0, -0.5}) {
    SdpaOptions o;
    o.scale = scale;
    expect_matches_oracle(x.q, x.k, x.v, o, kAllowAll, kNoBias, "scale " + std::to_string(scale));
  }
  // The default is 1 / sqrt(Dk): the same as passing it.
  SdpaOptions explicit_default;
  explicit_default.scale = 1.0 / std::sqrt(8.0);
  EXPECT_LE(relative_error(attn::scaled_dot_product_attention(x.q, x.k, x.v).out.to_vector(),
                           attn::scaled_dot_product_attention(x.q, x.k, x.v, explicit_default)
                               .out.to_vector()),
            kReferenceBudget);
  // Scale 0: every score is 0, so the output is the mean of the values.
  SdpaOptions zero;
  zero.scale = 0.0;
  const AttentionResult r = attn::scaled_dot_product_attention(x.q, x.k, x.v, zero);
  std::vector<long double> mean;
  for (Index b = 0; b < d.B; ++b)
    for (Index h = 0; h < d.Hq; ++h)
      for (Index i = 0; i < d.Lq; ++i)
        for (Index e = 0; e < d.Dv; ++e) {
          long double s = 0;
          for (Index j = 0; j < d.Lk; ++j) s += x.v(b, h, j, e);
          mean.push_back(s / d.Lk);
        }
  EXPECT_LE(relative_error(r.out.to_vector(), mean), budget_for(r, d.Dk, d.Lk));
}

TEST(ScaledDotProductAttention, WeightsAndLse) {
  const Dims d{2, 3, 3, 4, 7, 5, 2};
  const Qkv x = make_qkv(d, 700);
  std::vector<std::int64_t> lens = {3, 7};
  SdpaOptions o;
  o.mask = Mask::lengths(lens);
  const AllowedFn allowed = [&](Index b, Index, Index, Index j) { return j < lens[b]; };
  const AttentionResult r = expect_matches_oracle(x.q, x.k, x.v, o, allowed, kNoBias, "weights");
  EXPECT_EQ(r.weights.shape(), (Shape{2, 3, 4, 7}));
  expect_weight_rows(r.weights, allowed, kNoBias, budget_for(r, d.Dk, d.Lk), "weights");
  // lse = log sum exp(scores) over the allowed keys, written out here.
  const long double scale = 1.0L / std::sqrt(5.0L);
  std::vector<long double> lse;
  for (Index b = 0; b < d.B; ++b)
    for (Index h = 0; h < d.Hq; ++h)
      for (Index i = 0; i < d.Lq; ++i) {
        long double sum_exp = 0;
        for (Index j = 0; j < lens[b]; ++j) {
          long double dot = 0;
          for (Index e = 0; e < d.Dk; ++e)
            dot += static_cast<long double>(x.q(b, h, i, e)) * x.k(b, h, j, e);
          sum_exp += std::exp(scale * dot);
        }
        lse.push_back(std::log(sum_exp));
      }
  EXPECT_LE(relative_error(r.lse.to_vector(), lse), budget_for(r, d.Dk, d.Lk));
}

// ---- strides and the `into` variant ------------------------------------------------------

TEST(ScaledDotProductAttention, HeadSplitViewsOfProjections) {
  // q, k, v as (B, L, H*D) projections read as (B, H, L, D) views.
  const Index B = 2, H = 3, Lq = 5, Lk = 6, Dk = 4, Dv = 5;
  const Tensor qp = randn({B, Lq, H * Dk}, 801), kp = randn({B, Lk, H * Dk}, 802),
               vp = randn({B, Lk, H * Dv}, 803);
  const Tensor q = qp.reshape({B, Lq, H, Dk}).permute({0, 2, 1, 3});
  const Tensor k = kp.reshape({B, Lk, H, Dk}).permute({0, 2, 1, 3});
  const Tensor v = vp.reshape({B, Lk, H, Dv}).permute({0, 2, 1, 3});
  ASSERT_FALSE(q.is_contiguous());
  ASSERT_EQ(q.data(), qp.data()) << "the head split must be a view";
  SdpaOptions o;
  o.mask = Mask::causal(Align::bottom_right);
  const AllowedFn allowed = [](Index, Index, Index i, Index j) { return j <= i + 1; };
  const AttentionResult strided = expect_matches_oracle(q, k, v, o, allowed, kNoBias, "head split views");
  const AttentionResult dense =
      attn::scaled_dot_product_attention(q.contiguous(), k.contiguous(), v.contiguous(), o);
  EXPECT_LE(relative_error(strided.out.to_vector(), dense.out.to_vector()), kReferenceBudget);
}

TEST(ScaledDotProductAttention, PackedQkvAndTransposedStrides) {
  // One (B, L, 3*H*D) buffer sliced into q, k and v, then heads split.
  const Index B = 2, H = 2, L = 7, D = 6;
  const Tensor qkv = randn({B, L, 3 * H * D}, 811);
  const auto head = [&](Index which) {
    return qkv.slice(2, which * H * D, (which + 1) * H * D).reshape({B, L, H, D}).permute({0, 2, 1, 3});
  };
  const Tensor q = head(0), k = head(1), v = head(2);
  const AttentionResult packed = expect_matches_oracle(q, k, v, {}, kAllowAll, kNoBias, "packed qkv");
  const AttentionResult dense =
      attn::scaled_dot_product_attention(q.contiguous(), k.contiguous(), v.contiguous());
  EXPECT_LE(relative_error(packed.out.to_vector(), dense.out.to_vector()), kReferenceBudget);

  // Keys stored as (B, H, D, L) and read transposed: the head dim has stride L.
  const Tensor kt = randn({B, H, D, L}, 812).transpose(2, 3);
  const Tensor vt = randn({B, H, D, L}, 813).transpose(2, 3);
  const Tensor qt = randn({H, B, L, D}, 814).permute({1, 0, 2, 3});
  ASSERT_NE(kt.stride(3), 1);
  SdpaOptions o;
  o.mask = Mask::causal();
  const AttentionResult t =
      expect_matches_oracle(qt, kt, vt, o, [](Index, Index, Index i, Index j) { return j <= i; },
                            kNoBias, "transposed strides");
  const AttentionResult td =
      attn::scaled_dot_product_attention(qt.contiguous(), kt.contiguous(), vt.contiguous(), o);
  EXPECT_LE(relative_error(t.out.to_vector(), td.out.to_vector()), kReferenceBudget);

  // Broadcast keys and values (stride 0 over heads).
  const Tensor kb = randn({B, 1, L, D}, 815).expand({B, H, L, D});
  const Tensor vb = randn({B, 1, L, D}, 816).expand({B, H, L, D});
  expect_matches_oracle(q, kb, vb, {}, kAllowAll, kNoBias, "expanded kv");
}

TEST(ScaledDotProductAttention, IntoWritesHeadsIntoAConcatenatedBuffer) {
  const Index B = 2, H = 4, Lq = 5, Lk = 3, Dk = 6, Dv = 3;
  const Tensor q = randn({B, H, Lq, Dk}, 901), k = randn({B, H, Lk, Dk}, 902),
               v = randn({B, H, Lk, Dv}, 903);
  // A (B, Lq, H*Dv + 2) buffer: the first H*Dv columns receive the heads, the
  // last 2 must be left alone.
  const Tensor buffer = Tensor::full({B, Lq, H * Dv + 2}, 7.0f);
  const Tensor out = buffer.slice(2, 0, H * Dv).reshape({B, Lq, H, Dv}).permute({0, 2, 1, 3});
  SdpaOptions o;
  o.mask = Mask::lengths(std::vector<std::int64_t>{2, 3});
  o.need_weights = true;
  const AttentionResult r = attn::scaled_dot_product_attention_into(q, k, v, out, o);
  EXPECT_EQ(r.out.data(), out.data()) << "result.out is `out`";
  EXPECT_EQ(r.out.shape(), out.shape());
  const AttentionResult want = attn::scaled_dot_product_attention(q, k, v, o);
  EXPECT_LE(relative_error(out.to_vector(), want.out.to_vector()), kReferenceBudget);
  EXPECT_LE(relative_error(r.weights.to_vector(), want.weights.to_vector()), kReferenceBudget);
  EXPECT_LE(relative_error(r.lse.to_vector(), want.lse.to_vector()), kReferenceBudget);
  // Concatenated heads: buffer[b, i, h*Dv + e] = out[b, h, i, e].
  for (Index b = 0; b < B; ++b)
    for (Index i = 0; i < Lq; ++i) {
      for (Index h = 0; h < H; ++h)
        for (Index e = 0; e < Dv; ++e) EXPECT_EQ(buffer(b, i, h * Dv + e), out(b, h, i, e));
      EXPECT_EQ(buffer(b, i, H * Dv), 7.0f) << "wrote outside `out`";
      EXPECT_EQ(buffer(b, i, H * Dv + 1), 7.0f) << "wrote outside `out`";
    }
  // The oracle, on the buffer's values.
  const OracleResult o_want = attn::test::oracle_attention(
      q, k, v, 1.0L / std::sqrt(6.0L), [](Index b, Index, Index, Index j) { return j < (b ? 3 : 2); });
  EXPECT_LE(relative_error(out.to_vector(), o_want.out), kReferenceBudget);

  // 3-D: a (B, Lq, Dv) transposed view.
  const Tensor q3 = randn({B, Lq, Dk}, 904), k3 = randn({B, Lk, Dk}, 905), v3 = randn({B, Lk, Dv}, 906);
  const Tensor out3 = Tensor::full({B, Dv, Lq}, kInf).transpose(1, 2);
  attn::scaled_dot_product_attention_into(q3, k3, v3, out3);
  EXPECT_LE(relative_error(out3.to_vector(), attn::scaled_dot_product_attention(q3, k3, v3).out.to_vector()),
            kReferenceBudget);
}

// ---- properties -----------------------------------------------------------------------

TEST(ScaledDotProductAttention, PermutingKeysAndValuesTogetherLeavesOutputUnchanged) {
  const Dims d{2, 2, 2, 5, 11, 6, 4};
  const Qkv x = make_qkv(d, 1000);
  std::vector<Index> perm(d.Lk);
  std::iota(perm.begin(), perm.end(), 0);
  Rng rng(1001);
  for (Index j = d.Lk - 1; j > 0; --j) std::swap(perm[j], perm[static_cast<Index>(rng.uniform() * (j + 1))]);
  ASSERT_NE(perm[0], 0) << "choose a seed whose permutation moves key 0";
  const Tensor kp = Tensor::zeros(x.k.shape()), vp = Tensor::zeros(x.v.shape());
  for (Index j = 0; j < d.Lk; ++j) {
    kp.select(2, j).copy_from(x.k.select(2, perm[j]));
    vp.select(2, j).copy_from(x.v.select(2, perm[j]));
  }
  const AttentionResult a = attn::scaled_dot_product_attention(x.q, x.k, x.v);
  const AttentionResult b = attn::scaled_dot_product_attention(x.q, kp, vp);
  EXPECT_LE(relative_error(b.out.to_vector(), a.out.to_vector()), kReferenceBudget);
  EXPECT_LE(relative_error(b.lse.to_vector(), a.lse.to_vector()), kReferenceBudget);
  // Permuting only the values does change it.
  const AttentionResult c = attn::scaled_dot_product_attention(x.q, x.k, vp);
  EXPECT_GT(relative_error(c.out.to_vector(), a.out.to_vector()), kReferenceBudget);
}

TEST(ScaledDotProductAttention, CausalRowsIgnoreLaterKeys) {
  const Dims d{2, 2, 2, 8, 8, 5, 3};
  const Qkv x = make_qkv(d, 1100);
  const Index t = 4;  // keys and values from position t on are replaced
  const Tensor k2 = x.k.clone(), v2 = x.v.clone();
  k2.slice(2, t, d.Lk).copy_from(randn({d.B, d.Hkv, d.Lk - t, d.Dk}, 1101));
  v2.slice(2, t, d.Lk).copy_from(randn({d.B, d.Hkv, d.Lk - t, d.Dv}, 1102));
  SdpaOptions o;
  o.mask = Mask::causal();
  o.need_weights = true;
  const AttentionResult a = attn::scaled_dot_product_attention(x.q, x.k, x.v, o);
  const AttentionResult b = attn::scaled_dot_product_attention(x.q, k2, v2, o);
  EXPECT_EQ(a.out.slice(2, 0, t).to_vector(), b.out.slice(2, 0, t).to_vector())
      << "rows before " << t << " must not see keys from " << t << " on";
  EXPECT_EQ(a.lse.slice(2, 0, t).to_vector(), b.lse.slice(2, 0, t).to_vector());
  EXPECT_EQ(a.weights.slice(2, 0, t).to_vector(), b.weights.slice(2, 0, t).to_vector());
  EXPECT_GT(relative_error(b.out.slice(2, t, d.Lq).to_vector(), a.out.slice(2, t, d.Lq).to_vector()),
            kReferenceBudget)
      << "later rows do see them";
}

TEST(ScaledDotProductAttention, IdenticalKeysGiveUniformWeights) {
  // Every key is the same vector, so each allowed key gets weight 1/n and the
  // output is the mean of the allowed values.
  const Index B = 2, H = 2, Lq = 3, Lk = 9, Dk = 5, Dv = 4;
  const Tensor q = randn({B, H, Lq, Dk}, 1200);
  const Tensor k = randn({1, 1, 1, Dk}, 1201).expand({B, H, Lk, Dk}).contiguous();
  const Tensor v = randn({B, H, Lk, Dv}, 1202);
  const std::vector<std::int64_t> lens = {4, 9};
  SdpaOptions o;
  o.mask = Mask::lengths(lens);
  o.need_weights = true;
  const AttentionResult r = attn::scaled_dot_product_attention(q, k, v, o);
  std::vector<long double> mean, uniform;
  for (Index b = 0; b < B; ++b)
    for (Index h = 0; h < H; ++h)
      for (Index i = 0; i < Lq; ++i) {
        for (Index e = 0; e < Dv; ++e) {
          long double s = 0;
          for (Index j = 0; j < lens[b]; ++j) s += v(b, h, j, e);
          mean.push_back(s / lens[b]);
        }
        for (Index j = 0; j < Lk; ++j) uniform.push_back(j < lens[b] ? 1.0L / lens[b] : 0.0L);
      }
  EXPECT_LE(relative_error(r.out.to_vector(), mean), budget_for(r, Dk, Lk));
  EXPECT_LE(relative_error(r.weights.to_vector(), uniform), budget_for(r, Dk, Lk));
}

// ---- fully masked rows -----------------------------------------------------------------

TEST(ScaledDotProductAttention, FullyMaskedRowsAreZeroWithLseMinusInf) {
  const Dims d{2, 2, 2, 3, 5, 4, 3};
  const Qkv x = make_qkv(d, 1300);
  Tensor all_inf = Tensor::full({d.Lq, d.Lk}, 0.0f);
  all_inf.select(0, 1).fill(-kInf);  // query row 1 sees nothing
  std::vector<MaskCase> cases;
  cases.push_back({"lengths 0", Mask::lengths(std::vector<std::int64_t>{0, 2}),
                   [](Index b, Index, Index, Index j) { return j < (b ? 2 : 0); }});
  cases.push_back({"dense all-block", Mask::block(BoolTensor::full({1, 1, 1, d.Lk}, true)),
                   [](Index, Index, Index, Index) { return false; }});
  cases.push_back({"dense keep nothing", Mask::keep(BoolTensor::zeros({d.B, 1, 1, 1})),
                   [](Index, Index, Index, Index) { return false; }});
  cases.push_back({"bias row of -inf", Mask::bias(all_inf), kAllowAll,
                   [&](Index, Index, Index i, Index j) { return all_inf(i, j); }});
  cases.push_back({"bias all -inf", Mask::bias(Tensor::full({1}, -kInf)), kAllowAll,
                   [](Index, Index, Index, Index) { return -std::numeric_limits<long double>::infinity(); }});
  cases.push_back({"causal bottom_right, Lq > Lk", Mask::causal(Align::bottom_right),
                   [](Index, Index, Index i, Index j) { return j <= i - 2; }});
  for (const MaskCase& c : cases) {
    SdpaOptions o;
    o.mask = c.mask;
    if (c.name == "causal bottom_right, Lq > Lk") {
      // Swap roles so that Lq = 5 > Lk = 3: rows 0 and 1 see nothing.
      const Tensor q = randn({2, 2, 5, 4}, 1310), k = randn({2, 2, 3, 4}, 1311),
                   v = randn({2, 2, 3, 3}, 1312);
      const AttentionResult r = expect_matches_oracle(q, k, v, o, c.allowed, c.bias, c.name);
      EXPECT_EQ(r.lse(1, 1, 0), -kInf);
      EXPECT_EQ(r.out(1, 1, 1, 2), 0.0f);
      continue;
    }
    const AttentionResult r = expect_matches_oracle(x.q, x.k, x.v, o, c.allowed, c.bias, c.name);
    expect_weight_rows(r.weights, c.allowed, c.bias, budget_for(r, d.Dk, d.Lk), c.name);
  }
  // Spot checks of the contract itself, independent of the oracle.
  SdpaOptions o;
  o.mask = Mask::lengths(std::vector<std::int64_t>{0, 2});
  o.need_weights = true;
  const AttentionResult r = attn::scaled_dot_product_attention(x.q, x.k, x.v, o);
  for (float y : r.out.select(0, 0).to_vector()) EXPECT_EQ(y, 0.0f);
  for (float w : r.weights.select(0, 0).to_vector()) EXPECT_EQ(w, 0.0f);
  for (float l : r.lse.select(0, 0).to_vector()) EXPECT_EQ(l, -kInf);
  for (float l : r.lse.select(0, 1).to_vector()) EXPECT_TRUE(std::isfinite(l));
}

TEST(ScaledDotProductAttention, FullyMaskedRowUnderD2lFillIsUniform) {
  // d2l replaces masked scores by -1e6: a row with nothing allowed averages all values.
  const Dims d{2, 1, 1, 2, 4, 3, 2};
  const Qkv x = make_qkv(d, 1400);
  SdpaOptions o;
  o.mask = Mask::lengths(std::vector<std::int64_t>{0, 4});
  o.fill = MaskFill::d2l;
  const AttentionResult r = expect_matches_oracle(
      x.q, x.k, x.v, o, [](Index b, Index, Index, Index) { return b == 1; }, kNoBias, "d2l empty row");
  for (Index i = 0; i < d.Lq; ++i) {
    for (Index j = 0; j < d.Lk; ++j) EXPECT_EQ(r.weights(0, 0, i, j), 0.25f);
    EXPECT_TRUE(std::isfinite(r.lse(0, 0, i)));
  }
}

TEST(ScaledDotProductAttention, NoKeysAtAll) {
  const Tensor q = randn({1, 2, 3, 4}, 1450);
  const Tensor k = Tensor::zeros({1, 2, 0, 4}), v = Tensor::zeros({1, 2, 0, 5});
  SdpaOptions o;
  o.need_weights = true;
  const AttentionResult r = attn::scaled_dot_product_attention(q, k, v, o);
  EXPECT_EQ(r.out.shape(), (Shape{1, 2, 3, 5}));
  for (float y : r.out.to_vector()) EXPECT_EQ(y, 0.0f);
  for (float l : r.lse.to_vector()) EXPECT_EQ(l, -kInf);
}

TEST(ScaledDotProductAttention, HugeScoresStayFinite) {
  // Scores near float's range and an exactly -inf bias next to them.
  const Tensor q = Tensor::full({1, 1, 2, 2}, 1e18f), k = Tensor::from({1, 1, 3, 2}, {1, 1, -1, -1, 0.5f, 0.5f});
  const Tensor v = Tensor::from({1, 1, 3, 1}, {1, 2, 3});
  SdpaOptions o;
  o.scale = 1.0;
  o.mask = Mask::bias(Tensor::from({2, 3}, {0, 0, 0, -kInf, 0, 0}));
  o.need_weights = true;
  const AttentionResult r = attn::scaled_dot_product_attention(q, k, v, o);
  for (float y : r.out.to_vector()) EXPECT_TRUE(std::isfinite(y)) << y;
  for (float w : r.weights.to_vector()) EXPECT_TRUE(std::isfinite(w)) << w;
  EXPECT_EQ(r.out(0, 0, 0, 0), 1.0f) << "key 0 dominates row 0";
  EXPECT_EQ(r.out(0, 0, 1, 0), 3.0f) << "key 0 blocked by -inf: key 2 dominates row 1";
}

// ---- dropout ----------------------------------------------------------------------------

TEST(ScaledDotProductAttention, DropoutZeroIsIdentity) {
  const Dims d{2, 2, 2, 4, 6, 3, 3};
  const Qkv x = make_qkv(d, 1500);
  SdpaOptions o;
  o.dropout = {0.0, 1234};
  expect_matches_oracle(x.q, x.k, x.v, o, kAllowAll, kNoBias, "dropout p = 0");
}

TEST(ScaledDotProductAttention, DropoutOneZeroesTheOutput) {
  const Dims d{2, 2, 2, 4, 6, 3, 3};
  const Qkv x = make_qkv(d, 1510);
  SdpaOptions o;
  o.need_weights = true;
  o.dropout = {1.0, 7};
  const AttentionResult r = attn::scaled_dot_product_attention(x.q, x.k, x.v, o);
  for (float y : r.out.to_vector()) EXPECT_EQ(y, 0.0f);
  for (float w : r.weights.to_vector()) EXPECT_EQ(w, 0.0f);
  // lse is taken before dropout.
  const OracleResult want = attn::test::oracle_attention(x.q, x.k, x.v, 1.0L / std::sqrt(3.0L));
  expect_lse(r.lse, want.lse, budget_for(r, d.Dk, d.Lk), "dropout p = 1");
}

TEST(ScaledDotProductAttention, DropoutKeepsAndRescales) {
  const Dims d{2, 4, 2, 7, 9, 5, 4};
  const Qkv x = make_qkv(d, 1520);
  const double p = 0.3;
  const Index shift = d.Lk - d.Lq;
  const AllowedFn allowed = [=](Index, Index, Index i, Index j) { return j <= i + shift; };
  const OracleResult want =
      attn::test::oracle_attention(x.q, x.k, x.v, 1.0L / std::sqrt(5.0L), allowed);
  SdpaOptions o;
  o.need_weights = true;
  o.mask = Mask::causal(Align::bottom_right);
  o.dropout = {p, 42};
  const AttentionResult a = attn::scaled_dot_product_attention(x.q, x.k, x.v, o);
  const AttentionResult again = attn::scaled_dot_product_attention(x.q, x.k, x.v, o);
  const double budget = budget_for(a, d.Dk, d.Lk);
  EXPECT_EQ(a.out.to_vector(), again.out.to_vector()) << "same seed, same result";
  EXPECT_EQ(a.weights.to_vector(), again.weights.to_vector());
  expect_lse(a.lse, want.lse, budget, "lse is taken before dropout");

  o.dropout = {p, 43};
  const AttentionResult other = attn::scaled_dot_product_attention(x.q, x.k, x.v, o);
  EXPECT_NE(other.weights.to_vector(), a.weights.to_vector()) << "different seeds, different kept sets";
  EXPECT_NE(other.out.to_vector(), a.out.to_vector());

  // Each weight is dropped (exactly 0) or kept and scaled by 1 / (1 - p).
  const std::vector<float> w = a.weights.to_vector();
  std::vector<float> kept;
  std::vector<long double> kept_want;
  std::int64_t dropped = 0, allowed_count = 0;
  for (std::size_t n = 0; n < w.size(); ++n) {
    if (want.weights[n] == 0.0L) {
      EXPECT_EQ(w[n], 0.0f) << "a masked weight stays 0 at " << n;
      continue;
    }
    ++allowed_count;
    if (w[n] == 0.0f) {
      ++dropped;
    } else {
      kept.push_back(w[n]);
      kept_want.push_back(want.weights[n] / (1.0L - p));
    }
  }
  ASSERT_GT(kept.size(), 0u);
  EXPECT_LE(relative_error(kept, kept_want), budget) << "kept weights are w / (1 - p)";
  attn::test::expect_binomial_fraction(dropped, allowed_count, p, "dropped weights");

  // The output is the dropped-out weights times the values, whether or not the
  // weights are returned (the kept set does not depend on need_weights).
  const OracleResult with_dropped =
      attn::test::oracle_attend(d.B, d.Hq, d.Lq, d.Lk, x.v, [](Index, Index, Index, Index) { return 0.0L; },
                                kAllowAll, kNoBias, attn::MaskFill::neg_inf, &a.weights);
  EXPECT_LE(relative_error(a.out.to_vector(), with_dropped.out), budget);
  SdpaOptions no_weights = o;
  no_weights.dropout = {p, 42};
  no_weights.need_weights = false;
  EXPECT_LE(relative_error(attn::scaled_dot_product_attention(x.q, x.k, x.v, no_weights).out.to_vector(),
                           with_dropped.out),
            budget);
}

TEST(ScaledDotProductAttention, WeightsBeforeDropout) {
  // weights_before_dropout returns the softmax (d2l's attention_weights) while the
  // output still uses the dropped-out weights, the same ones as without the flag.
  const Dims d{2, 4, 2, 6, 9, 5, 3};
  const Qkv x = make_qkv(d, 1530);
  const Index shift = d.Lk - d.Lq;
  const AllowedFn allowed = [=](Index, Index, Index i, Index j) { return j <= i + shift; };
  const OracleResult want = attn::test::oracle_attention(x.q, x.k, x.v, 1.0L / std::sqrt(5.0L), allowed);
  const double p = 0.4;
  SdpaOptions o;
  o.mask = Mask::causal(Align::bottom_right);
  o.need_weights = true;
  o.dropout = {p, 11};
  const AttentionResult after = attn::scaled_dot_product_attention(x.q, x.k, x.v, o);
  o.weights_before_dropout = true;
  const AttentionResult before = attn::scaled_dot_product_attention(x.q, x.k, x.v, o);
  const double budget = budget_for(before, d.Dk, d.Lk);

  ASSERT_EQ(before.weights.shape(), (Shape{d.B, d.Hq, d.Lq, d.Lk}));
  expect_no_nan(before.weights.to_vector(), "weights before dropout");
  EXPECT_LE(relative_error(before.weights.to_vector(), want.weights), budget) << "the softmax, not dropped";
  expect_weight_rows(before.weights, allowed, kNoBias, budget, "weights before dropout");
  expect_lse(before.lse, want.lse, budget, "weights before dropout");
  // The returned weights after dropout are those of the same kept set: 0 or w / (1 - p).
  std::int64_t dropped = 0, allowed_count = 0;
  const std::vector<float> w_after = after.weights.to_vector();
  for (std::size_t n = 0; n < w_after.size(); ++n) {
    if (want.weights[n] == 0.0L) continue;
    ++allowed_count;
    if (w_after[n] == 0.0f) ++dropped;
  }
  attn::test::expect_binomial_fraction(dropped, allowed_count, p, "dropped weights");
  // Both outputs are the weighted sums with the dropped-out weights, not with the softmax.
  const OracleResult with_dropped =
      attn::test::oracle_attend(d.B, d.Hq, d.Lq, d.Lk, x.v, [](Index, Index, Index, Index) { return 0.0L; },
                                kAllowAll, kNoBias, MaskFill::neg_inf, &after.weights);
  EXPECT_LE(relative_error(before.out.to_vector(), with_dropped.out), budget);
  EXPECT_LE(relative_error(after.out.to_vector(), with_dropped.out), budget);
  EXPECT_GT(relative_error(before.out.to_vector(), want.out), budget) << "the output did not drop anything";

  // Without dropout the flag changes nothing; without need_weights no weights come back.
  SdpaOptions no_dropout;
  no_dropout.mask = o.mask;
  no_dropout.weights_before_dropout = true;
  for (MaskFill fill : {MaskFill::neg_inf, MaskFill::d2l}) {
    no_dropout.fill = fill;
    expect_matches_oracle(x.q, x.k, x.v, no_dropout, allowed, kNoBias, "weights_before_dropout, p = 0");
  }
  o.need_weights = false;
  const AttentionResult plain = attn::scaled_dot_product_attention(x.q, x.k, x.v, o);
  EXPECT_FALSE(plain.weights.defined() && plain.weights.numel() > 0);
  EXPECT_LE(relative_error(plain.out.to_vector(), with_dropped.out), budget);

  // 3-D inputs, p = 1: the output is zero, the weights before dropout are the softmax.
  const Tensor q3 = randn({2, 4, 3}, 1531), k3 = randn({2, 5, 3}, 1532), v3 = randn({2, 5, 2}, 1533);
  SdpaOptions all;
  all.need_weights = true;
  all.weights_before_dropout = true;
  all.dropout = {1.0, 3};
  const AttentionResult r3 = attn::scaled_dot_product_attention(q3, k3, v3, all);
  for (float y : r3.out.to_vector()) EXPECT_EQ(y, 0.0f);
  const OracleResult want3 =
      attn::test::oracle_attention(q3.unsqueeze(1), k3.unsqueeze(1), v3.unsqueeze(1), 1.0L / std::sqrt(3.0L));
  EXPECT_LE(relative_error(r3.weights.to_vector(), want3.weights), budget_for(r3, 3, 5));
}

// ---- dot_product_attention ------------------------------------------------------------------

TEST(DotProductAttention, Document001IsSdpaWithScaleOne) {
  // x1 = randn(2, 3, 4), x2 = randn(2, 5, 4): softmax(bmm(x1, x2^T)) x2.
  const Tensor x1 = randn({2, 3, 4}, 1600), x2 = randn({2, 5, 4}, 1601);
  SdpaOptions w;
  w.need_weights = true;
  const AttentionResult r = attn::dot_product_attention(x1, x2, x2, w);
  EXPECT_EQ(r.out.shape(), (Shape{2, 3, 4}));
  EXPECT_EQ(r.weights.shape(), (Shape{2, 3, 5}));
  const OracleResult want =
      attn::test::oracle_attention(x1.unsqueeze(1), x2.unsqueeze(1), x2.unsqueeze(1), 1.0L);
  EXPECT_LE(relative_error(r.out.to_vector(), want.out), budget_for(r, 4, 5));
  EXPECT_LE(relative_error(r.weights.to_vector(), want.weights), budget_for(r, 4, 5));
  // And it is not the scaled one.
  EXPECT_GT(relative_error(attn::scaled_dot_product_attention(x1, x2, x2).out.to_vector(), want.out),
            kReferenceBudget);
}

TEST(DotProductAttention, RejectsAScale) {
  const Tensor x = randn({1, 2, 3}, 1610);
  SdpaOptions o;
  o.scale = 0.5;
  const std::string msg = error_of([&] { attn::dot_product_attention(x, x, x, o); });
  EXPECT_THAT(msg, HasSubstr("[dot_product_attention]"));
  EXPECT_THAT(msg, HasSubstr("scale"));
  EXPECT_THAT(msg, HasSubstr("0.5"));
  // The header's contract (attn/error.hpp): the op, the argument and the shapes.
  EXPECT_THAT(msg, HasSubstr("query (1, 2, 3)"));
}

TEST(ScaledDotProductAttention, ReportsTheKernel) {
  const Tensor x = randn({1, 2, 3}, 1620);
  SdpaOptions o;
  o.kernel = attn::Kernel::reference;
  const AttentionResult r = attn::scaled_dot_product_attention(x, x, x, o);
  EXPECT_EQ(r.kernel, attn::Kernel::reference) << "the reference was requested";
  EXPECT_FALSE(r.kernel_reason.empty());
  EXPECT_FALSE(attn::scaled_dot_product_attention(x, x, x).kernel_reason.empty());
  EXPECT_EQ(attn::scaled_dot_product_attention(x, x, x).kernel, attn::Kernel::fused)
      << "automatic picks the fused kernel";
  EXPECT_EQ(attn::to_string(attn::Kernel::reference), "reference");
  EXPECT_EQ(attn::to_string(attn::Kernel::fused), "fused");
}

// ---- errors -----------------------------------------------------------------------------------

TEST(ScaledDotProductAttentionErrors, RankMismatch) {
  const Tensor q3 = Tensor::zeros({2, 3, 4}), k4 = Tensor::zeros({2, 1, 5, 4}),
               v4 = Tensor::zeros({2, 1, 5, 4});
  expect_error(error_of([&] { attn::scaled_dot_product_attention(q3, k4, v4); }),
               {"query (2, 3, 4)", "key (2, 1, 5, 4)", "value (2, 1, 5, 4)"});
  const Tensor q2 = Tensor::zeros({3, 4});
  expect_error(error_of([&] { attn::scaled_dot_product_attention(q2, q2, q2); }), {"query (3, 4)"});
  const Tensor q5 = Tensor::zeros({1, 1, 1, 1, 1});
  expect_error(error_of([&] { attn::scaled_dot_product_attention(q5, q5, q5); }),
               {"query (1, 1, 1, 1, 1)"});
}

TEST(ScaledDotProductAttentionErrors, BatchMismatch) {
  const Tensor q = Tensor::zeros({2, 2, 3, 4}), k = Tensor::zeros({3, 2, 5, 4}),
               v = Tensor::zeros({3, 2, 5, 4});
  expect_error(error_of([&] { attn::scaled_dot_product_attention(q, k, v); }),
               {"batch", "query (2, 2, 3, 4)", "key (3, 2, 5, 4)"});
}

TEST(ScaledDotProductAttentionErrors, ThreeDimensionalInputsAreReportedAsPassed) {
  // 3-D inputs are one head internally; the message must still show the
  // caller's (B, L, D) shapes, not the (B, 1, L, D) views.
  const Tensor q = Tensor::zeros({2, 3, 4}), k = Tensor::zeros({2, 5, 4});
  expect_error(error_of([&] { attn::scaled_dot_product_attention(q, k, Tensor::zeros({1, 5, 4})); }),
               {"batch", "query (2, 3, 4)", "key (2, 5, 4)", "value (1, 5, 4)"});
  expect_error(error_of([&] { attn::scaled_dot_product_attention(q, Tensor::zeros({2, 5, 6}), k); }),
               {"head dim", "query (2, 3, 4)", "key (2, 5, 6)"});
  expect_error(error_of([&] { attn::scaled_dot_product_attention(q, k, Tensor::zeros({2, 6, 4})); }),
               {"length", "key (2, 5, 4)", "value (2, 6, 4)"});
}

TEST(ScaledDotProductAttentionErrors, HeadDimMismatch) {
  const Tensor q = Tensor::zeros({2, 2, 3, 4}), k = Tensor::zeros({2, 2, 5, 6}),
               v = Tensor::zeros({2, 2, 5, 4});
  expect_error(error_of([&] { attn::scaled_dot_product_attention(q, k, v); }),
               {"head dim", "query (2, 2, 3, 4)", "key (2, 2, 5, 6)"});
}

TEST(ScaledDotProductAttentionErrors, QueryHeadsNotAMultipleOfKvHeads) {
  const Tensor q = Tensor::zeros({2, 3, 3, 4}), k = Tensor::zeros({2, 2, 5, 4}),
               v = Tensor::zeros({2, 2, 5, 4});
  expect_error(error_of([&] { attn::scaled_dot_product_attention(q, k, v); }),
               {"heads", "query (2, 3, 3, 4)", "key (2, 2, 5, 4)"});
  const Tensor v1 = Tensor::zeros({2, 1, 5, 4});
  expect_error(error_of([&] { attn::scaled_dot_product_attention(q, k, v1); }),
               {"heads", "value (2, 1, 5, 4)"});
}

TEST(ScaledDotProductAttentionErrors, KeyValueLengthMismatch) {
  const Tensor q = Tensor::zeros({2, 2, 3, 4}), k = Tensor::zeros({2, 2, 5, 4}),
               v = Tensor::zeros({2, 2, 6, 4});
  expect_error(error_of([&] { attn::scaled_dot_product_attention(q, k, v); }),
               {"length", "key (2, 2, 5, 4)", "value (2, 2, 6, 4)"});
}

TEST(ScaledDotProductAttentionErrors, MaskNotBroadcastable) {
  const Tensor q = Tensor::zeros({2, 2, 4, 3}), k = Tensor::zeros({2, 2, 5, 3}),
               v = Tensor::zeros({2, 2, 5, 3});
  SdpaOptions o;
  o.mask = Mask::keep(BoolTensor::zeros({3, 5}));
  expect_error(error_of([&] { attn::scaled_dot_product_attention(q, k, v, o); }),
               {"mask", "(3, 5)", "(2, 2, 4, 5)"});
  o.mask = Mask::block(BoolTensor::zeros({3, 1, 1, 5}));
  expect_error(error_of([&] { attn::scaled_dot_product_attention(q, k, v, o); }),
               {"mask", "(3, 1, 1, 5)", "(2, 2, 4, 5)"});
  o.mask = Mask::bias(Tensor::zeros({4, 6}));
  expect_error(error_of([&] { attn::scaled_dot_product_attention(q, k, v, o); }),
               {"bias", "(4, 6)", "(2, 2, 4, 5)"});
  o.mask = Mask::bias(Tensor::zeros({1, 2, 2, 4, 5}));
  expect_error(error_of([&] { attn::scaled_dot_product_attention(q, k, v, o); }),
               {"bias", "(1, 2, 2, 4, 5)"});
}

TEST(ScaledDotProductAttentionErrors, LengthsOutOfRange) {
  const Tensor q = Tensor::zeros({2, 2, 4, 3}), k = Tensor::zeros({2, 2, 5, 3}),
               v = Tensor::zeros({2, 2, 5, 3});
  SdpaOptions o;
  o.mask = Mask::lengths(std::vector<std::int64_t>{-1, 3});
  expect_error(error_of([&] { attn::scaled_dot_product_attention(q, k, v, o); }),
               {"valid_lens", "(2)", "-1"});
  o.mask = Mask::lengths(IndexTensor::from({2, 4}, {1, 2, 3, 4, 5, 6, 0, 0}));
  expect_error(error_of([&] { attn::scaled_dot_product_attention(q, k, v, o); }),
               {"valid_lens", "(2, 4)", "6", "5"});
}

TEST(ScaledDotProductAttentionErrors, LengthsWrongShape) {
  const Tensor q = Tensor::zeros({2, 2, 4, 3}), k = Tensor::zeros({2, 2, 5, 3}),
               v = Tensor::zeros({2, 2, 5, 3});
  SdpaOptions o;
  o.mask = Mask::lengths(std::vector<std::int64_t>{1, 2, 3});
  expect_error(error_of([&] { attn::scaled_dot_product_attention(q, k, v, o); }),
               {"valid_lens", "(3)", "(2, 2, 4, 5)"});
  o.mask = Mask::lengths(IndexTensor::zeros({2, 5}));
  expect_error(error_of([&] { attn::scaled_dot_product_attention(q, k, v, o); }),
               {"valid_lens", "(2, 5)", "(2, 2, 4, 5)"});
  o.mask = Mask::lengths(IndexTensor::zeros({2, 2, 4}));
  expect_error(error_of([&] { attn::scaled_dot_product_attention(q, k, v, o); }),
               {"valid_lens", "(2, 2, 4)"});
}

TEST(ScaledDotProductAttentionErrors, NonFiniteScale) {
  const Tensor q = Tensor::zeros({2, 3, 4}), k = Tensor::zeros({2, 5, 4}), v = Tensor::zeros({2, 5, 4});
  for (double scale : {std::nan(""), std::numeric_limits<double>::infinity(),
                       -std::numeric_limits<double>::infinity()}) {
    SdpaOptions o;
    o.scale = scale;
    expect_error(error_of([&] { attn::scaled_dot_product_attention(q, k, v, o); }),
                 {"scale", "query (2, 3, 4)", "key (2, 5, 4)"});
  }
}

TEST(ScaledDotProductAttentionErrors, DropoutOutsideUnitInterval) {
  const Tensor q = Tensor::zeros({2, 3, 4}), k = Tensor::zeros({2, 5, 4}), v = Tensor::zeros({2, 5, 4});
  for (double p : {-0.1, 1.5, std::nan("")}) {
    SdpaOptions o;
    o.dropout = {p, 0};
    const std::string msg = error_of([&] { attn::scaled_dot_product_attention(q, k, v, o); });
    // The header's contract (attn/error.hpp): the op, the argument and the shapes.
    expect_error(msg, {"dropout", "query (2, 3, 4)", "key (2, 5, 4)"});
    if (!std::isnan(p)) {
      EXPECT_THAT(msg, HasSubstr(std::to_string(p).substr(0, 3)));
    }
  }
}

TEST(ScaledDotProductAttentionErrors, IntoWithWrongOutShape) {
  const Tensor q = Tensor::zeros({2, 2, 3, 4}), k = Tensor::zeros({2, 2, 5, 4}),
               v = Tensor::zeros({2, 2, 5, 6});
  const Tensor out = Tensor::zeros({2, 2, 3, 4});  // Dk, not Dv
  expect_error(error_of([&] { attn::scaled_dot_product_attention_into(q, k, v, out); }),
               {"out", "(2, 2, 3, 4)", "(2, 2, 3, 6)"});
  const Tensor out3 = Tensor::zeros({2, 3, 6});
  expect_error(error_of([&] { attn::scaled_dot_product_attention_into(q, k, v, out3); }),
               {"out", "(2, 3, 6)", "(2, 2, 3, 6)"});
}

TEST(ScaledDotProductAttentionErrors, IntoRejectsABroadcastOut) {
  const Tensor q = randn({2, 2, 3, 4}, 1700), k = randn({2, 2, 5, 4}, 1701), v = randn({2, 2, 5, 6}, 1702);
  // Every head writing one (B, 1, Lq, Dv) buffer: a stride 0 over a dim of size 2.
  const Tensor shared = Tensor::zeros({2, 1, 3, 6}).expand({2, 2, 3, 6});
  ASSERT_EQ(shared.stride(1), 0);
  expect_error(error_of([&] { attn::scaled_dot_product_attention_into(q, k, v, shared); }),
               {"out", "(2, 2, 3, 6)", "query (2, 2, 3, 4)"});
  // One query row broadcast over Lq.
  const Tensor rows = Tensor::zeros({2, 2, 1, 6}).expand({2, 2, 3, 6});
  expect_error(error_of([&] { attn::scaled_dot_product_attention_into(q, k, v, rows); }), {"out"});
  // A stride 0 over a dim of size 1 writes each element once: accepted.
  const Tensor q3 = randn({2, 3, 4}, 1703), k3 = randn({2, 5, 4}, 1704), v3 = randn({2, 5, 6}, 1705);
  const Tensor buffer = Tensor::zeros({2, 3, 6});
  const Tensor one_head = buffer.unsqueeze(1);  // (2, 1, 3, 6), stride 0 on the size-1 dim
  ASSERT_EQ(one_head.stride(1), 0);
  const AttentionResult r =
      attn::scaled_dot_product_attention_into(q3.unsqueeze(1), k3.unsqueeze(1), v3.unsqueeze(1), one_head);
  const OracleResult want =
      attn::test::oracle_attention(q3.unsqueeze(1), k3.unsqueeze(1), v3.unsqueeze(1), 0.5L);
  EXPECT_LE(relative_error(buffer.to_vector(), want.out), budget_for(r, 4, 5));
}

TEST(ScaledDotProductAttentionErrors, IntoRejectsAnOutOverlappingItsInputs) {
  // q, k and v in the first B batch entries of one (2 B, L, 3 D) buffer, as a packed
  // projection; out = q, k or v is rejected before anything is written.
  const Index B = 2, L = 4, D = 3;
  const Tensor storage = randn({2 * B, L, 3 * D}, 1710);
  const Tensor packed = storage.slice(0, 0, B);
  const Tensor q = packed.slice(2, 0, D), k = packed.slice(2, D, 2 * D), v = packed.slice(2, 2 * D, 3 * D);
  const std::vector<float> before = storage.to_vector();
  for (const auto& [name, out] : {std::pair<std::string, Tensor>{"query", q}, {"key", k}, {"value", v}}) {
    SCOPED_TRACE("out = " + name);
    expect_error(error_of([&] { attn::scaled_dot_product_attention_into(q, k, v, out); }),
                 {"out", "(2, 4, 3)", "query (2, 4, 3)"});
  }
  EXPECT_EQ(storage.to_vector(), before) << "a rejected call wrote into its inputs";

  // One element in common: q is elements 0-3 of a buffer, out elements 3-6.
  const Tensor buffer = randn({8}, 1711);
  const Tensor q4 = Tensor::wrap(buffer.data(), {1, 1, 2, 2});
  const Tensor out4 = Tensor::wrap(buffer.data() + 3, {1, 1, 2, 2});
  const Tensor kv4 = randn({1, 1, 3, 2}, 1712);
  expect_error(error_of([&] { attn::scaled_dot_product_attention_into(q4, kv4, kv4, out4); }), {"out"});

  // The other batch entries of the same storage do not overlap the inputs: accepted.
  const Tensor out = storage.slice(0, B, 2 * B).slice(2, 0, D);  // (B, L, D)
  const AttentionResult r = attn::scaled_dot_product_attention_into(q, k, v, out);
  const OracleResult want =
      attn::test::oracle_attention(q.unsqueeze(1), k.unsqueeze(1), v.unsqueeze(1), 1.0L / std::sqrt(3.0L));
  EXPECT_LE(relative_error(out.to_vector(), want.out), budget_for(r, D, L));
  EXPECT_EQ(packed.to_vector(), std::vector<float>(before.begin(), before.begin() + B * L * 3 * D))
      << "writing out changed the inputs";
}
