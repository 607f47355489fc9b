// attn::Mask and attn::materialize: every term kind against hand-written
// patterns ("1" = may attend), and their conjunctions.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "attn/mask.hpp"
#include "test_util.hpp"

using attn::Align;
using attn::BoolTensor;
using attn::IndexTensor;
using attn::Mask;
using attn::Tensor;
using attn::test::error_of;
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
