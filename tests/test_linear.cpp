// attn::linear and attn::Linear: y = x W^T + b as nn.Linear, against long-double
// loops, for every rank of x, strided views, with and without bias, on each kernel.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "attn/modules.hpp"
#include "attn/ops.hpp"
#include "test_util.hpp"
#include "tolerance.hpp"

using attn::Kernel;
using attn::Rng;
using attn::Shape;
using attn::Tensor;
using attn::test::error_of;
using attn::test::float_sum_budget;
using attn::test::kKernels;
using attn::test::kReferenceBudget;
using attn::test::kSixSigmas;
using attn::test::relative_error;
using attn::test::uniform_max_fraction;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

namespace {

// The oracle's y = x W^T + b and the condition of its sums.
struct LinearOracle {
  std::vector<long double> y;  // (rows, out): rows of x in row-major order of the view
  // || |x| |W|^T + |b| || / || y ||: how much the terms of the sums cancel (>= 1).
  double condition = 1;
  std::int64_t terms = 0;  // terms per sum: in, plus 1 with a bias
};

// y[r, o] = b[o] + sum_c x(r, c) W[o, c] for r < rows, o < out, in long double.
template <class X>
LinearOracle oracle_sums(std::int64_t rows, const X& x, const Tensor& weight, const Tensor& bias) {
  const std::int64_t in = weight.size(1), out = weight.size(0);
  LinearOracle r;
  r.terms = in + (bias.defined() ? 1 : 0);
  long double norm_y = 0, norm_abs = 0;
  for (std::int64_t row = 0; row < rows; ++row)
    for (std::int64_t o = 0; o < out; ++o) {
      long double acc = bias.defined() ? bias(o) : 0.0L;
      long double abs = bias.defined() ? std::abs(static_cast<long double>(bias(o))) : 0.0L;
      for (std::int64_t c = 0; c < in; ++c) {
        const long double term = static_cast<long double>(x(row, c)) * weight(o, c);
        acc += term;
        abs += std::abs(term);
      }
      r.y.push_back(acc);
      norm_y += acc * acc;
      norm_abs += abs * abs;
    }
  if (norm_y > 0) r.condition = static_cast<double>(std::sqrt(norm_abs / norm_y));
  return r;
}

// The oracle over the rows of x (row-major order of the view).
LinearOracle oracle_linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  const std::int64_t in = weight.size(1);
  const std::vector<float> xs = x.to_vector();
  const std::int64_t rows = attn::shape_numel(Shape(x.shape().begin(), x.shape().end() - 1));
  return oracle_sums(rows, [&](std::int64_t r, std::int64_t c) { return xs[r * in + c]; }, weight, bias);
}

// The error budget of one linear: a double-accumulating reference rounds once; a
// float kernel sums in + 1 terms (no softmax), within gamma_n times their condition.
double budget(Kernel kernel, const LinearOracle& want) {
  return kernel == Kernel::reference ? kReferenceBudget : float_sum_budget({want.terms}, want.condition);
}

Shape with_last(Shape shape, std::int64_t last) {
  shape.back() = last;
  return shape;
}

// Checks linear(x, weight, bias) on both kernels against the oracle.
void expect_linear_matches(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  for (Kernel kernel : kKernels) {
    SCOPED_TRACE("kernel " + attn::to_string(kernel) + ", x " + x.shape_string() +
                 (bias.defined() ? ", with bias" : ", no bias"));
    const Tensor y = attn::linear(x, weight, bias, kernel);
    EXPECT_EQ(y.shape(), with_last(x.shape(), weight.size(0)));
    const LinearOracle want = oracle_linear(x, weight, bias);
    EXPECT_LE(relative_error(y.to_vector(), want.y), budget(kernel, want));
  }
}

}  // namespace

TEST(LinearOp, OneTwoAndThreeDimensionalX) {
  Rng rng(11);
  const std::int64_t in = 17, out = 5;
  const Tensor weight = Tensor::randn({out, in}, rng);
  const Tensor bias = Tensor::randn({out}, rng);
  for (const Shape& shape : {Shape{in}, Shape{3, in}, Shape{4, 2, in}, Shape{1, 1, in}}) {
    const Tensor x = Tensor::randn(shape, rng);
    expect_linear_matches(x, weight, bias);
    expect_linear_matches(x, weight, Tensor{});
  }
}

TEST(LinearOp, OddAndLaneSizedWidths) {
  Rng rng(12);
  for (std::int64_t in : {1, 7, 8, 9, 15, 16, 17, 65}) {
    for (std::int64_t out : {1, 3, 16}) {
      const Tensor weight = Tensor::randn({out, in}, rng);
      const Tensor bias = Tensor::randn({out}, rng);
      expect_linear_matches(Tensor::randn({5, in}, rng), weight, bias);
    }
  }
}

TEST(LinearOp, PermutedLengthBatchView) {
  // The (L, B, E) view of a (B, L, E) tensor, as MultiHeadAttention reads batch_first
  // inputs: rows are not contiguous.
  Rng rng(13);
  const Tensor base = Tensor::randn({3, 4, 6}, rng);  // (B, L, E)
  const Tensor x = base.permute({1, 0, 2});          // (L, B, E)
  ASSERT_FALSE(x.is_contiguous());
  const Tensor weight = Tensor::randn({5, 6}, rng);
  const Tensor bias = Tensor::randn({5}, rng);
  expect_linear_matches(x, weight, bias);
  expect_linear_matches(x, weight, Tensor{});
  // Row (l, b) of the result is base[b, l] W^T + bias: the oracle read through base's
  // own indices, not through the view.
  const LinearOracle want = oracle_sums(
      4 * 3, [&](std::int64_t row, std::int64_t c) { return base(row % 3, row / 3, c); }, weight, bias);
  for (Kernel kernel : kKernels) {
    SCOPED_TRACE("kernel " + attn::to_string(kernel));
    const Tensor y = attn::linear(x, weight, bias, kernel);
    ASSERT_EQ(y.shape(), (Shape{4, 3, 5}));
    EXPECT_LE(relative_error(y.to_vector(), want.y), budget(kernel, want));
  }
}

TEST(LinearOp, TransposedSlicedAndBroadcastX) {
  Rng rng(14);
  const Tensor weight = Tensor::randn({4, 6}, rng);
  const Tensor bias = Tensor::randn({4}, rng);
  // Feature axis with stride 5: the transpose of a (6, 5) tensor.
  const Tensor transposed = Tensor::randn({6, 5}, rng).transpose(0, 1);  // (5, 6)
  ASSERT_EQ(transposed.stride(1), 5);
  expect_linear_matches(transposed, weight, bias);
  // A window of a wider tensor: rows have stride 9.
  const Tensor sliced = Tensor::randn({2, 3, 9}, rng).slice(2, 2, 8);  // (2, 3, 6)
  expect_linear_matches(sliced, weight, bias);
  // Strided weight and bias: views into larger tensors.
  const Tensor weight_t = Tensor::randn({6, 4}, rng).transpose(0, 1);  // (4, 6), column-major
  const Tensor bias_s = Tensor::randn({8}, rng).slice(0, 2, 6);
  expect_linear_matches(Tensor::randn({3, 6}, rng), weight_t, bias_s);
}

TEST(LinearOp, BroadcastRowsX) {
  // One row broadcast to 3 rows (row stride 0), e.g. a shared query expanded over a
  // batch. The row is the first of a larger tensor so that a kernel that ignores the
  // stride reads the wrong (but allocated) rows rather than past the storage.
  Rng rng(16);
  const Tensor weight = Tensor::randn({4, 6}, rng);
  const Tensor bias = Tensor::randn({4}, rng);
  const Tensor broadcast = Tensor::randn({4, 6}, rng).slice(0, 0, 1).expand({3, 6});
  ASSERT_EQ(broadcast.stride(0), 0);
  expect_linear_matches(broadcast, weight, Tensor{});
  expect_linear_matches(broadcast, weight, bias);
  // (2, 3, 6) with a broadcast middle dim.
  const Tensor middle = Tensor::randn({2, 1, 6}, rng).expand({2, 3, 6});
  expect_linear_matches(middle, weight, bias);
}

TEST(LinearOp, EmptyRowsAndZeroInFeatures) {
  Rng rng(15);
  const Tensor weight = Tensor::randn({4, 6}, rng);
  const Tensor bias = Tensor::randn({4}, rng);
  for (Kernel kernel : kKernels) {
    SCOPED_TRACE("kernel " + attn::to_string(kernel));
    const Tensor none = attn::linear(Tensor::zeros({0, 6}), weight, bias, kernel);
    EXPECT_EQ(none.shape(), (Shape{0, 4}));
    const Tensor none3 = attn::linear(Tensor::zeros({2, 0, 6}), weight, bias, kernel);
    EXPECT_EQ(none3.shape(), (Shape{2, 0, 4}));
    // in_features = 0: an empty sum, so y is the bias on every row.
    const Tensor y = attn::linear(Tensor::zeros({3, 0}), Tensor::zeros({4, 0}), bias, kernel);
    ASSERT_EQ(y.shape(), (Shape{3, 4}));
    for (std::int64_t r = 0; r < 3; ++r)
      for (std::int64_t o = 0; o < 4; ++o) EXPECT_EQ(y(r, o), bias(o));
  }
}

TEST(LinearOp, ErrorsNameTheArgumentAndShapes) {
  const Tensor weight = Tensor::zeros({4, 6});
  const std::string width = error_of([&] { attn::linear(Tensor::zeros({2, 5}), weight); });
  EXPECT_THAT(width, HasSubstr("linear"));
  EXPECT_THAT(width, HasSubstr("x"));
  EXPECT_THAT(width, HasSubstr("(2, 5)"));
  EXPECT_THAT(width, HasSubstr("(4, 6)"));

  const std::string rank = error_of([&] { attn::linear(Tensor::zeros({2, 6}), Tensor::zeros({24})); });
  EXPECT_THAT(rank, HasSubstr("weight"));
  EXPECT_THAT(rank, HasSubstr("(24)"));

  const std::string bias = error_of([&] { attn::linear(Tensor::zeros({2, 6}), weight, Tensor::zeros({6})); });
  EXPECT_THAT(bias, HasSubstr("bias"));
  EXPECT_THAT(bias, HasSubstr("(6)"));
  EXPECT_THAT(bias, HasSubstr("(4, 6)"));

  const std::string bias_rank =
      error_of([&] { attn::linear(Tensor::zeros({2, 6}), weight, Tensor::zeros({1, 4})); });
  EXPECT_THAT(bias_rank, HasSubstr("bias"));
  EXPECT_THAT(bias_rank, HasSubstr("(1, 4)"));
}

TEST(LinearModule, InitialisedWithinTorchBounds) {
  // nn.Linear: weight and bias ~ U(-1/sqrt(in), 1/sqrt(in)).
  Rng rng(21);
  const std::int64_t in = 32, out = 64;
  const attn::Linear layer(in, out, true, rng);
  ASSERT_EQ(layer.weight.shape(), (Shape{out, in}));
  ASSERT_EQ(layer.bias.shape(), (Shape{out}));
  const double bound = 1.0 / std::sqrt(static_cast<double>(in));
  for (const Tensor& t : {layer.weight, layer.bias}) {
    double max_abs = 0, sum = 0, sum_sq = 0;
    for (float w : t.to_vector()) {
      EXPECT_LE(std::abs(w), bound);
      max_abs = std::max(max_abs, static_cast<double>(std::abs(w)));
      sum += w;
      sum_sq += static_cast<double>(w) * w;
    }
    const double n = static_cast<double>(t.numel());
    // Spread over the whole interval, centred, with U(-a, a)'s variance a^2 / 3, each
    // to within six standard deviations (test_util.hpp): n draws all stay below
    // t a with probability t^n; the mean has standard deviation a / sqrt(3 n); x^2 / (a^2 / 3)
    // has variance (a^4 / 5 - a^4 / 9) / (a^2 / 3)^2 = 4 / 5, so its mean sqrt(0.8 / n).
    EXPECT_GT(max_abs, uniform_max_fraction(t.numel()) * bound);
    EXPECT_LT(std::abs(sum / n), kSixSigmas * bound / std::sqrt(3 * n));
    EXPECT_NEAR(sum_sq / n / (bound * bound / 3), 1.0, kSixSigmas * std::sqrt(0.8 / n));
  }
  // A different stream gives different weights.
  Rng other(22);
  const attn::Linear layer2(in, out, true, other);
  EXPECT_NE(layer.weight.to_vector(), layer2.weight.to_vector());
}

TEST(LinearModule, WithoutBias) {
  Rng rng(23);
  const attn::Linear layer(5, 3, false, rng);
  EXPECT_FALSE(layer.bias.defined());
  EXPECT_EQ(layer.weight.shape(), (Shape{3, 5}));
  const Tensor x = Tensor::randn({2, 4, 5}, rng);
  const Tensor y = layer.forward(x);
  EXPECT_EQ(y.shape(), (Shape{2, 4, 3}));
  const LinearOracle want = oracle_linear(x, layer.weight, Tensor{});
  EXPECT_LE(relative_error(y.to_vector(), want.y), budget(Kernel::automatic, want));
  const attn::NamedParameters params = layer.named_parameters();
  ASSERT_EQ(params.size(), 1u);
  EXPECT_EQ(params[0].first, "weight");
}

TEST(LinearModule, ForwardIsLinear) {
  Rng rng(24);
  const attn::Linear layer(6, 4, true, rng);
  for (const Shape& shape : {Shape{6}, Shape{3, 6}, Shape{2, 3, 6}}) {
    const Tensor x = Tensor::randn(shape, rng);
    const Tensor y = layer.forward(x);
    EXPECT_EQ(y.shape(), with_last(shape, 4));
    const LinearOracle want = oracle_linear(x, layer.weight, layer.bias);
    EXPECT_LE(relative_error(y.to_vector(), want.y), budget(Kernel::automatic, want));
  }
  // Strided input through the module too.
  const Tensor strided = Tensor::randn({3, 2, 6}, rng).permute({1, 0, 2});
  const LinearOracle want = oracle_linear(strided, layer.weight, layer.bias);
  EXPECT_LE(relative_error(layer.forward(strided).to_vector(), want.y), budget(Kernel::automatic, want));
}

TEST(LinearModule, NamedParametersShareStorage) {
  Rng rng(25);
  const attn::Linear layer(3, 2, true, rng);
  const attn::NamedParameters plain = layer.named_parameters();
  std::vector<std::string> names;
  for (const auto& [name, t] : plain) names.push_back(name);
  EXPECT_THAT(names, ElementsAre("weight", "bias"));

  const attn::NamedParameters prefixed = layer.named_parameters("W_q.");
  names.clear();
  for (const auto& [name, t] : prefixed) names.push_back(name);
  EXPECT_THAT(names, ElementsAre("W_q.weight", "W_q.bias"));
  EXPECT_EQ(prefixed[0].second.shape(), (Shape{2, 3}));
  EXPECT_EQ(prefixed[1].second.shape(), (Shape{2}));

  // Loading weights through the handles changes the module.
  prefixed[0].second.copy_from(Tensor::from({2, 3}, {1, 2, 3, 4, 5, 6}));
  prefixed[1].second.copy_from(Tensor::from({2}, {0.5f, -1}));
  const Tensor y = layer.forward(Tensor::from({3}, {1, 0, -1}));
  EXPECT_EQ(y.to_vector(), (std::vector<float>{1 - 3 + 0.5f, 4 - 6 - 1}));
}

TEST(LinearModule, ErrorsNameTheArgument) {
  Rng rng(26);
  const attn::Linear layer(4, 2, true, rng);
  const std::string message = error_of([&] { layer.forward(Tensor::zeros({3, 5})); });
  EXPECT_THAT(message, HasSubstr("x"));
  EXPECT_THAT(message, HasSubstr("(3, 5)"));
  EXPECT_THAT(message, HasSubstr("(2, 4)"));
}
