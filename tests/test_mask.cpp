// attn::Mask and attn::materialize: every term kind against hand-written
// patterns ("1" = may attend), and their conjunctions.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "attn/mask.hpp"
#include "test_util.hpp"

using attn::Align;
using attn::BoolTensor;
using attn::IndexTensor;
using attn::Mask;
using attn::Tensor;
using attn::Rng;
using attn::test::error_of;
using attn::test::HasSubstrs;
using attn::test::kInf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using Rows = std::vector<std::string>;

namespace {

// The (Lq, Lk) slice (b, h) of a materialized mask as strings of 0/1.
Rows rows(const BoolTensor& m, std::int64_t b, std::int64_t h) {
  Rows out;
  for (std::int64_t i = 0; i < m.size(2); ++i) {
    std::string r;
    for (std::int64_t j = 0; j < m.size(3); ++j) r += m(b, h, i, j) ? '1' : '0';
    out.push_back(r);
  }
  return out;
}

// A bool tensor of `shape` from the same 0/1 strings, concatenated in row-major order.
BoolTensor bools(attn::Shape shape, const std::string& bits) {
  std::vector<bool> v;
  for (char c : bits) v.push_back(c == '1');
  return BoolTensor::from(std::move(shape), v);
}

}  // namespace

TEST(Mask, NoneAllowsEverything) {
  const Mask m;
  EXPECT_TRUE(m.is_none());
  const BoolTensor t = attn::materialize(m, 2, 3, 4, 5);
  EXPECT_EQ(t.shape(), (attn::Shape{2, 3, 4, 5}));
  for (bool x : t.to_vector()) EXPECT_TRUE(x);
}

TEST(Mask, CausalTopLeftWithLqNotLk) {
  const BoolTensor wide = attn::materialize(Mask::causal(), 1, 1, 3, 5);
  EXPECT_THAT(rows(wide, 0, 0), ElementsAre("10000", "11000", "11100"));
  const BoolTensor tall = attn::materialize(Mask::causal(Align::top_left), 1, 1, 5, 3);
  EXPECT_THAT(rows(tall, 0, 0), ElementsAre("100", "110", "111", "111", "111"));
  const BoolTensor square = attn::materialize(Mask::causal(), 2, 2, 3, 3);
  for (int b = 0; b < 2; ++b)
    for (int h = 0; h < 2; ++h)
      EXPECT_THAT(rows(square, b, h), ElementsAre("100", "110", "111")) << b << "," << h;
}

TEST(Mask, CausalBottomRightWithLqNotLk) {
  // The last query sees every key: query i sits at key i + Lk - Lq.
  const BoolTensor wide = attn::materialize(Mask::causal(Align::bottom_right), 1, 1, 3, 5);
  EXPECT_THAT(rows(wide, 0, 0), ElementsAre("11100", "11110", "11111"));
  // Lq > Lk: the first queries see nothing.
  const BoolTensor tall = attn::materialize(Mask::causal(Align::bottom_right), 1, 1, 5, 3);
  EXPECT_THAT(rows(tall, 0, 0), ElementsAre("000", "000", "100", "110", "111"));
  // One query (decoding step) sees the whole cache.
  const BoolTensor step = attn::materialize(Mask::causal(Align::bottom_right), 1, 1, 1, 4);
  EXPECT_THAT(rows(step, 0, 0), ElementsAre("1111"));
}

TEST(Mask, Lengths1D) {
  // d2l: valid_lens [2, 3] keeps the first 2 keys of batch 0, 3 of batch 1, in
  // every head and row.
  const Mask m = Mask::lengths(IndexTensor::from({2}, {2, 3}));
  const BoolTensor t = attn::materialize(m, 2, 2, 2, 4);
  for (int h = 0; h < 2; ++h) {
    EXPECT_THAT(rows(t, 0, h), ElementsAre("1100", "1100")) << "head " << h;
    EXPECT_THAT(rows(t, 1, h), ElementsAre("1110", "1110")) << "head " << h;
  }
  // The vector overload is the same mask; 0 and Lk are the extremes.
  const BoolTensor v = attn::materialize(Mask::lengths(std::vector<std::int64_t>{0, 4}), 2, 1, 2, 4);
  EXPECT_THAT(rows(v, 0, 0), ElementsAre("0000", "0000"));
  EXPECT_THAT(rows(v, 1, 0), ElementsAre("1111", "1111"));
}

TEST(Mask, Lengths2D) {
  // d2l: valid_lens [[1, 3], [2, 4]]: one length per query row.
  const Mask m = Mask::lengths(IndexTensor::from({2, 2}, {1, 3, 2, 4}));
  const BoolTensor t = attn::materialize(m, 2, 3, 2, 4);
  for (int h = 0; h < 3; ++h) {
    EXPECT_THAT(rows(t, 0, h), ElementsAre("1000", "1110")) << "head " << h;
    EXPECT_THAT(rows(t, 1, h), ElementsAre("1100", "1111")) << "head " << h;
  }
}

TEST(Mask, LengthsStridedTensor) {
  // A transposed (Lq, B) tensor read as (B, Lq).
  const IndexTensor lq_b = IndexTensor::from({2, 2}, {1, 2, 3, 4});
  const BoolTensor t = attn::materialize(Mask::lengths(lq_b.transpose(0, 1)), 2, 1, 2, 4);
  EXPECT_THAT(rows(t, 0, 0), ElementsAre("1000", "1110"));
  EXPECT_THAT(rows(t, 1, 0), ElementsAre("1100", "1111"));
}

TEST(Mask, SlidingWindowTopLeft) {
  const BoolTensor back = attn::materialize(Mask::sliding_window(1), 1, 1, 5, 5);
  EXPECT_THAT(rows(back, 0, 0), ElementsAre("10000", "11000", "01100", "00110", "00011"));
  const BoolTensor both = attn::materialize(Mask::sliding_window(1, 1), 1, 1, 5, 5);
  EXPECT_THAT(rows(both, 0, 0), ElementsAre("11000", "11100", "01110", "00111", "00011"));
  const BoolTensor ahead = attn::materialize(Mask::sliding_window(0, 2, Align::top_left), 1, 1, 3, 5);
  EXPECT_THAT(rows(ahead, 0, 0), ElementsAre("11100", "01110", "00111"));
}

TEST(Mask, SlidingWindowBottomRight) {
  // Lq = 2, Lk = 5: query i sits at key i + 3.
  const BoolTensor t = attn::materialize(Mask::sliding_window(1, 0, Align::bottom_right), 1, 1, 2, 5);
  EXPECT_THAT(rows(t, 0, 0), ElementsAre("00110", "00011"));
  const BoolTensor r = attn::materialize(Mask::sliding_window(2, 1, Align::bottom_right), 1, 1, 3, 4);
  // positions 1, 2, 3: [p-2, p+1]
  EXPECT_THAT(rows(r, 0, 0), ElementsAre("1110", "1111", "0111"));
}

TEST(Mask, SlidingWindowRejectsNegativeSizes) {
  EXPECT_THAT(error_of([] { Mask::sliding_window(-1, 0); }), HasSubstr("left"));
  EXPECT_THAT(error_of([] { Mask::sliding_window(0, -2); }), HasSubstr("right"));
}

TEST(Mask, DenseKeepBroadcastLqLk) {
  const BoolTensor keep = bools({3, 4}, "1010" "0110" "1111");
  const BoolTensor t = attn::materialize(Mask::keep(keep), 2, 2, 3, 4);
  for (int b = 0; b < 2; ++b)
    for (int h = 0; h < 2; ++h)
      EXPECT_THAT(rows(t, b, h), ElementsAre("1010", "0110", "1111")) << b << "," << h;
  // Polarity::keep via dense() is the same.
  EXPECT_EQ(attn::materialize(Mask::dense(keep, attn::Polarity::keep), 2, 2, 3, 4).to_vector(),
            t.to_vector());
}

TEST(Mask, DenseBlockBroadcastLqLk) {
  // true = blocked, as nn.MultiheadAttention and `mask * -1e9`.
  const BoolTensor block = bools({3, 4}, "1010" "0110" "0000");
  const BoolTensor t = attn::materialize(Mask::block(block), 1, 2, 3, 4);
  for (int h = 0; h < 2; ++h) EXPECT_THAT(rows(t, 0, h), ElementsAre("0101", "1001", "1111"));
  EXPECT_EQ(attn::materialize(Mask::dense(block, attn::Polarity::block), 1, 2, 3, 4).to_vector(),
            t.to_vector());
}

TEST(Mask, DenseKeyPaddingB11Lk) {
  // A (B, 1, 1, Lk) key padding mask (true = pad, blocked).
  const BoolTensor pad = bools({2, 1, 1, 4}, "0011" "0001");
  const BoolTensor t = attn::materialize(Mask::block(pad), 2, 2, 3, 4);
  for (int h = 0; h < 2; ++h) {
    EXPECT_THAT(rows(t, 0, h), ElementsAre("1100", "1100", "1100"));
    EXPECT_THAT(rows(t, 1, h), ElementsAre("1110", "1110", "1110"));
  }
}

TEST(Mask, DensePerHead) {
  // (H, 1, Lk): broadcast over batch and queries, differs by head.
  const BoolTensor per_head = bools({2, 1, 3}, "100" "011");
  const BoolTensor t = attn::materialize(Mask::keep(per_head), 2, 2, 2, 3);
  for (int b = 0; b < 2; ++b) {
    EXPECT_THAT(rows(t, b, 0), ElementsAre("100", "100"));
    EXPECT_THAT(rows(t, b, 1), ElementsAre("011", "011"));
  }
}

TEST(Mask, DenseStridedView) {
  // A transposed (Lk, Lq) tensor read as (Lq, Lk).
  const BoolTensor lk_lq = bools({3, 2}, "10" "11" "01");
  const BoolTensor t = attn::materialize(Mask::keep(lk_lq.transpose(0, 1)), 1, 1, 2, 3);
  EXPECT_THAT(rows(t, 0, 0), ElementsAre("110", "011"));
}

TEST(Mask, BiasMinusInfBlocksFiniteDoesNot) {
  // Large finite negative biases (the tutorial's -1e9) still allow; -inf blocks.
  const Tensor bias = Tensor::from({2, 3}, {0.0f, -kInf, -1e9f, -kInf, 2.5f, -kInf});
  const BoolTensor t = attn::materialize(Mask::bias(bias), 2, 2, 2, 3);
  for (int b = 0; b < 2; ++b)
    for (int h = 0; h < 2; ++h) EXPECT_THAT(rows(t, b, h), ElementsAre("101", "010"));
  // Two bias terms add: -inf in either blocks.
  const Tensor other = Tensor::from({1, 3}, {-kInf, 0.0f, 0.0f});
  const BoolTensor both = attn::materialize(Mask::bias(bias) & Mask::bias(other), 1, 1, 2, 3);
  EXPECT_THAT(rows(both, 0, 0), ElementsAre("001", "010"));
}

TEST(Mask, ConjunctionsIntersect) {
  const Mask causal_len = Mask::causal() & Mask::lengths(std::vector<std::int64_t>{2, 4});
  const BoolTensor t = attn::materialize(causal_len, 2, 1, 4, 4);
  EXPECT_THAT(rows(t, 0, 0), ElementsAre("1000", "1100", "1100", "1100"));
  EXPECT_THAT(rows(t, 1, 0), ElementsAre("1000", "1100", "1110", "1111"));

  Mask m = Mask::causal(Align::bottom_right);
  m &= Mask::sliding_window(1);  // top_left window on a bottom_right causal
  m &= Mask::block(bools({1, 1, 1, 5}, "10000"));
  // Lq = 3, Lk = 5: causal allows j <= i + 2; window allows i - 1 <= j <= i.
  // i=0: {0} minus blocked 0 -> none; i=1: {0,1} -> {1}; i=2: {1,2}.
  EXPECT_THAT(rows(attn::materialize(m, 1, 1, 3, 5), 0, 0), ElementsAre("00000", "01000", "01100"));

  const Tensor bias = Tensor::from({3, 3}, {0, 0, -kInf, 0, -kInf, 0, 0, 0, 0});
  const Mask with_bias = Mask::causal() & Mask::bias(bias) & Mask::keep(bools({3}, "011"));
  EXPECT_THAT(rows(attn::materialize(with_bias, 1, 1, 3, 3), 0, 0), ElementsAre("000", "000", "011"));

  EXPECT_EQ(causal_len.causal_terms().size(), 1u);
  EXPECT_EQ(causal_len.length_terms().size(), 1u);
  EXPECT_FALSE(causal_len.is_none());
  EXPECT_EQ(m.causal_terms().size(), 1u);
  EXPECT_EQ(m.window_terms().size(), 1u);
  EXPECT_EQ(m.dense_terms().size(), 1u);
  EXPECT_EQ(with_bias.bias_terms().size(), 1u);
  // & does not modify its operands.
  const Mask a = Mask::causal();
  const Mask ab = a & Mask::causal(Align::bottom_right);
  EXPECT_EQ(a.causal_terms().size(), 1u);
  EXPECT_EQ(ab.causal_terms().size(), 2u);
}

TEST(Mask, MaterializeRejectsTermsThatDoNotFit) {
  const std::string dense = error_of(
      [] { attn::materialize(Mask::keep(BoolTensor::zeros({3, 5})), 2, 1, 4, 5); });
  EXPECT_THAT(dense, HasSubstr("mask"));
  EXPECT_THAT(dense, HasSubstr("(3, 5)"));
  EXPECT_THAT(dense, HasSubstr("(2, 1, 4, 5)"));

  const std::string bias = error_of(
      [] { attn::materialize(Mask::bias(Tensor::zeros({4, 4})), 1, 1, 4, 5); });
  EXPECT_THAT(bias, HasSubstr("bias"));
  EXPECT_THAT(bias, HasSubstr("(4, 4)"));

  const std::string shape = error_of(
      [] { attn::materialize(Mask::lengths(std::vector<std::int64_t>{1, 2, 3}), 2, 1, 4, 5); });
  EXPECT_THAT(shape, HasSubstr("valid_lens"));
  EXPECT_THAT(shape, HasSubstr("(3)"));

  const std::string big = error_of(
      [] { attn::materialize(Mask::lengths(std::vector<std::int64_t>{1, 6}), 2, 1, 4, 5); });
  EXPECT_THAT(big, HasSubstr("valid_lens"));
  EXPECT_THAT(big, HasSubstr("6"));

  EXPECT_THROW(attn::materialize(Mask::lengths(std::vector<std::int64_t>{-1, 2}), 2, 1, 4, 5),
               attn::Error);
}

TEST(Mask, AppendUnmaskedKeysPattern) {
  // Causal bottom_right over Lk = 5 real keys, then 2 appended keys every query sees:
  // the diagonal sits where the real keys put it, not 2 keys further right.
  const Mask m = Mask::causal(Align::bottom_right).append_unmasked_keys(2);
  EXPECT_EQ(m.unmasked_trailing_keys(), 2);
  EXPECT_THAT(rows(attn::materialize(m, 1, 1, 3, 7), 0, 0), ElementsAre("1110011", "1111011", "1111111"));
  // Without the appended keys the same term over 7 keys is another pattern.
  EXPECT_THAT(rows(attn::materialize(Mask::causal(Align::bottom_right), 1, 1, 3, 7), 0, 0),
              ElementsAre("1111100", "1111110", "1111111"));
  // A row whose real keys are all masked still sees the appended ones.
  const Mask none_real = Mask::lengths(std::vector<std::int64_t>{0}).append_unmasked_keys(1);
  EXPECT_THAT(rows(attn::materialize(none_real, 1, 1, 2, 3), 0, 0), ElementsAre("001", "001"));
  // No masking at all: everything open.
  for (bool x : attn::materialize(Mask{}.append_unmasked_keys(3), 1, 2, 2, 4).to_vector()) EXPECT_TRUE(x);
}

TEST(Mask, AppendUnmaskedKeysEveryTermKind) {
  // Each term kind over the S real keys of (B, H, Lq, S + n): the first S keys are the
  // mask as materialized over S keys, the last n are open to every query.
  const std::int64_t B = 2, H = 2, Lq = 4, S = 5;
  Rng rng(31);
  const Tensor bias = attn::test::random_bias({B, H, Lq, S}, 0.3, rng);
  const IndexTensor per_query = IndexTensor::from({B, Lq}, {0, 1, 5, 3, 2, 0, 4, 5});
  const std::vector<std::pair<std::string, Mask>> masks = {
      {"none", Mask{}},
      {"causal top_left", Mask::causal()},
      {"causal bottom_right", Mask::causal(Align::bottom_right)},
      {"lengths 1-D", Mask::lengths(std::vector<std::int64_t>{0, 3})},
      {"lengths 2-D", Mask::lengths(per_query)},
      {"sliding_window bottom_right", Mask::sliding_window(1, 1, Align::bottom_right)},
      {"dense keep (Lq, S)", Mask::keep(attn::test::random_bools({Lq, S}, 0.6, rng))},
      {"dense block (B, 1, 1, S)", Mask::block(attn::test::random_bools({B, 1, 1, S}, 0.4, rng))},
      {"bias (B, H, Lq, S) with -inf", Mask::bias(bias)},
      {"causal bottom_right & window & bias", Mask::causal(Align::bottom_right) & Mask::sliding_window(2) &
                                                   Mask::bias(bias)},
  };
  for (std::int64_t n : {0, 1, 3}) {
    for (const auto& [name, mask] : masks) {
      SCOPED_TRACE(name + ", n = " + std::to_string(n));
      const Mask appended = mask.append_unmasked_keys(n);
      EXPECT_EQ(appended.unmasked_trailing_keys(), n);
      EXPECT_EQ(mask.unmasked_trailing_keys(), 0) << "append_unmasked_keys changed its operand";
      const BoolTensor real = attn::materialize(mask, B, H, Lq, S);
      const BoolTensor all = attn::materialize(appended, B, H, Lq, S + n);
      ASSERT_EQ(all.shape(), (attn::Shape{B, H, Lq, S + n}));
      for (std::int64_t b = 0; b < B; ++b)
        for (std::int64_t h = 0; h < H; ++h)
          for (std::int64_t i = 0; i < Lq; ++i) {
            for (std::int64_t j = 0; j < S; ++j)
              EXPECT_EQ(all(b, h, i, j), real(b, h, i, j)) << b << "," << h << "," << i << "," << j;
            for (std::int64_t j = S; j < S + n; ++j)
              EXPECT_TRUE(all(b, h, i, j)) << "appended key " << j << " of " << b << "," << h << "," << i;
          }
    }
  }
}

TEST(Mask, AppendUnmaskedKeysErrors) {
  EXPECT_THAT(error_of([] { Mask::causal().append_unmasked_keys(-1); }),
              HasSubstrs({"append_unmasked_keys", "-1"}));
  // More appended keys than the scores have.
  EXPECT_THAT(error_of([] { attn::materialize(Mask::causal().append_unmasked_keys(4), 1, 1, 2, 3); }),
              HasSubstrs({"4", "3"}));
  // Dense and bias terms are sized for the real keys, not all of them.
  EXPECT_THAT(error_of([] {
                attn::materialize(Mask::keep(BoolTensor::zeros({2, 5})).append_unmasked_keys(2), 1, 1, 2, 5);
              }),
              HasSubstrs({"mask", "(2, 5)", "(1, 1, 2, 3)"}));
  // Two masks that append different numbers of keys do not combine.
  EXPECT_THAT(error_of([] { Mask::causal().append_unmasked_keys(1) & Mask{}.append_unmasked_keys(2); }),
              HasSubstrs({"1", "2"}));
}

TEST(Mask, SlidingWindowOfInt64MaxSizesDoesNotOverflow) {
  // Windows wider than any sequence: p - left and p + right must not wrap around.
  constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();
  for (Align align : {Align::top_left, Align::bottom_right}) {
    SCOPED_TRACE(align == Align::top_left ? "top_left" : "bottom_right");
    for (bool x : attn::materialize(Mask::sliding_window(kMax, kMax, align), 1, 1, 3, 5).to_vector())
      EXPECT_TRUE(x) << "an unbounded window allows every key";
    // Unbounded on one side only: the causal mask of the same alignment.
    EXPECT_EQ(attn::materialize(Mask::sliding_window(kMax, 0, align), 2, 1, 4, 6).to_vector(),
              attn::materialize(Mask::causal(align), 2, 1, 4, 6).to_vector());
  }
  // Unbounded to the right: key j >= i - 1 (top_left).
  EXPECT_THAT(rows(attn::materialize(Mask::sliding_window(1, kMax), 1, 1, 3, 4), 0, 0),
              ElementsAre("1111", "1111", "0111"));
}
