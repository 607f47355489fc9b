// attn::linear_backward and attn::Linear::backward against central differences of
// y = x W^T + b in long double, on each kernel, with strided and broadcast inputs.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "attn/backward.hpp"
#include "attn/modules.hpp"
#include "attn/ops.hpp"
#include "grad_check.hpp"
#include "test_util.hpp"

using attn::Kernel;
using attn::LinearGrads;
using attn::Rng;
using attn::Shape;
using attn::Tensor;
using attn::test::central_differences;
using attn::test::error_of;
using attn::test::expect_gradient;
using attn::test::HasSubstrs;
using attn::test::LTensor;
using attn::test::randn;
using ::testing::ElementsAre;

namespace {

struct Bounds {
  std::vector<long double> dx, dw, db;
};

// The sums of the backward: dx[r, c] = sum_o dy[r, o] W[o, c] (n = out terms),
// dW[o, c] = sum_r dy[r, o] x[r, c] and db[o] = sum_r dy[r, o] (n = rows terms). The
// reference accumulates in double: no bound beyond the final rounding. OpenBLAS
// accumulates in float: gamma_n sum |terms| (Higham 3.1), n u in u-units.
Bounds bounds(Kernel kernel, const LTensor& x2, const LTensor& w, const LTensor& dy2) {
  Bounds b;
  if (kernel == Kernel::reference) return b;
  const std::int64_t rows = x2.size(0), in = x2.size(1), out = w.size(0);
  const auto n_out = static_cast<long double>(out), n_rows = static_cast<long double>(rows);
  b.dx.assign(static_cast<std::size_t>(rows * in), 0.0L);
  b.dw.assign(static_cast<std::size_t>(out * in), 0.0L);
  b.db.assign(static_cast<std::size_t>(out), 0.0L);
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t o = 0; o < out; ++o) {
      b.db[o] += n_rows * std::abs(dy2(r, o));
      for (std::int64_t c = 0; c < in; ++c) {
        b.dx[r * in + c] += n_out * std::abs(dy2(r, o) * w(o, c));
        b.dw[o * in + c] += n_rows * std::abs(dy2(r, o) * x2(r, c));
      }
    }
  return b;
}

// linear_backward at (x, W, b) given dy, against central differences of
// sum(dy o (x W^T + b)); returns the gradients.
LinearGrads check(const Tensor& x, const Tensor& w, const Tensor& bias, const Tensor& dy, Kernel kernel,
                  const std::string& label) {
  const LinearGrads g = attn::linear_backward(x, w, dy, bias.defined(), kernel);
  const std::int64_t in = w.size(1), out = w.size(0), rows = x.numel() / in;
  const LTensor xL = attn::test::widen(x), wL = attn::test::widen(w);
  const LTensor bL = bias.defined() ? attn::test::widen(bias) : LTensor::zeros({out});
  const LTensor x2 = xL.reshape({rows, in}), dy2 = attn::test::widen(dy).reshape({rows, out});
  const auto loss = [&] {
    long double sum = 0;
    for (std::int64_t r = 0; r < rows; ++r)
      for (std::int64_t o = 0; o < out; ++o) {
        long double y = bL(o);
        for (std::int64_t c = 0; c < in; ++c) y += x2(r, c) * wL(o, c);
        sum += dy2(r, o) * y;
      }
    return sum;
  };
  const Bounds b = bounds(kernel, x2, wL, dy2);
  expect_gradient(g.dx, x.shape(), central_differences(xL, loss), b.dx, label + " dx");
  expect_gradient(g.dweight, w.shape(), central_differences(wL, loss), b.dw, label + " dweight");
  if (bias.defined()) {
    expect_gradient(g.dbias, bias.shape(), central_differences(bL, loss), b.db, label + " dbias");
  } else {
    EXPECT_FALSE(g.dbias.defined()) << label;
  }
  return g;
}

TEST(LinearBackward, EveryRankOnEachKernel) {
  for (Kernel kernel : attn::test::kKernels) {
    const std::string k = attn::to_string(kernel);
    check(randn({2, 3, 5}, 1), randn({4, 5}, 2), randn({4}, 3), randn({2, 3, 4}, 4), kernel, k + " 3-D");
    check(randn({5}, 5), randn({4, 5}, 6), randn({4}, 7), randn({4}, 8), kernel, k + " 1-D");
    check(randn({7, 3}, 9), randn({6, 3}, 10), Tensor{}, randn({7, 6}, 11), kernel, k + " no bias");
  }
}

TEST(LinearBackward, StridedAndBroadcastInputs) {
  for (Kernel kernel : attn::test::kKernels) {
    const std::string k = attn::to_string(kernel);
    // (L, B, E) read from a (B, L, E) buffer, and a weight transposed in memory.
    check(randn({2, 4, 5}, 12).transpose(0, 1), randn({5, 3}, 13).transpose(0, 1), randn({3}, 14),
          randn({3, 4, 2}, 15).permute({1, 2, 0}), kernel, k + " strided");
    // One row broadcast to four (stride 0): its gradient is still one per row.
    check(randn({1, 5}, 16).expand({4, 5}), randn({2, 5}, 17), randn({2}, 18), randn({4, 2}, 19), kernel,
          k + " broadcast rows");
  }
}

TEST(LinearBackward, EmptyReductionsGiveZeros) {
  const LinearGrads g =
      attn::linear_backward(Tensor::zeros({0, 3}), randn({2, 3}, 1), Tensor::zeros({0, 2}), true);
  EXPECT_THAT(g.dweight.to_vector(), ElementsAre(0, 0, 0, 0, 0, 0));
  EXPECT_THAT(g.dbias.to_vector(), ElementsAre(0, 0));
  EXPECT_EQ(g.dx.shape(), (Shape{0, 3}));
}

TEST(LinearBackward, ErrorsNameTheArguments) {
  EXPECT_THAT(
      error_of([] {
        attn::linear_backward(randn({2, 5}, 1), randn({4, 5}, 2), randn({2, 3}, 3), true);
      }),
      HasSubstrs({"[linear_backward]", "dy must have the output's shape (2, 4)", "dy (2, 3)", "x (2, 5)"}));
  EXPECT_THAT(error_of([] {
                attn::linear_backward(randn({2, 6}, 1), randn({4, 5}, 2), randn({2, 4}, 3), true);
              }),
              HasSubstrs({"x must end in in_features = 5", "weight (4, 5)"}));
  EXPECT_THAT(
      error_of([] {
        attn::linear_backward(randn({2, 5}, 1), randn({4, 5}, 2), randn({2, 4}, 3), true, Kernel::fused);
      }),
      HasSubstrs({"no fused kernel"}));
}

// ---- the module -------------------------------------------------------------------------

TEST(LinearModuleBackward, GradientsOfTheLastForwardUnderParameterNames) {
  Rng rng(20);
  attn::Linear layer(5, 3, true, rng);
  // On dyadic_randn's grid the float sums are exact, so the module's OpenBLAS
  // backward must match the reference's to the bit.
  layer.weight.copy_from(attn::test::dyadic_randn({3, 5}, rng, 0.5));
  layer.bias.copy_from(attn::test::dyadic_randn({3}, rng, 0.5));
  const Tensor x = attn::test::dyadic_randn({2, 4, 5}, rng), dy = attn::test::dyadic_randn({2, 4, 3}, rng);
  layer.forward(attn::test::dyadic_randn({1, 5}, rng));  // an earlier forward, forgotten
  layer.forward(x);
  const attn::LinearModuleGrads g = layer.backward(dy);
  EXPECT_EQ(attn::test::names_of(g.params), attn::test::names_of(layer.named_parameters()));
  const LinearGrads want = check(x, layer.weight, layer.bias, dy, Kernel::reference, "module");
  EXPECT_EQ(g.input.to_vector(), want.dx.to_vector());
  EXPECT_EQ(g.param("weight").to_vector(), want.dweight.to_vector());
  EXPECT_EQ(g.param("bias").to_vector(), want.dbias.to_vector());
  EXPECT_THAT(error_of([&] { (void)g.param("W_q.weight"); }),
              HasSubstrs({"no parameter named W_q.weight", "weight, bias"}));
}

TEST(LinearModuleBackward, NeedsAForwardAndTheOutputsShape) {
  Rng rng(21);
  attn::Linear layer(3, 2, false, rng);
  EXPECT_THAT(error_of([&] { layer.backward(randn({2}, 1)); }),
              HasSubstrs({"[Linear.backward]", "call forward first"}));
  layer.forward(randn({4, 3}, 2));
  EXPECT_THAT(error_of([&] {
                layer.backward(randn({4, 3}, 3));
              }),
              HasSubstrs({"[linear_backward]", "dy (4, 3)", "(4, 2)"}));
  EXPECT_EQ(attn::test::names_of(layer.backward(randn({4, 2}, 4)).params),
            std::vector<std::string>{"weight"});
}

}  // namespace
