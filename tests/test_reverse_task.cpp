// The reverse task of `attn train` (tools/attn/reverse_task.cpp): its data, its
// loss and the model's backward, against central finite differences.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "../tools/attn/reverse_task.hpp"
#include "tolerance.hpp"

namespace {

using attn::IndexTensor;
using attn::Tensor;
using attn::tools::ReverseModel;
using attn::tools::ReverseTaskSizes;

TEST(ReverseTask, TargetsAreTheTokensReversed) {
  attn::Rng rng(1);
  const ReverseTaskSizes sizes{.length = 7, .vocab = 5};
  const auto batch = attn::tools::reverse_batch(3, sizes, rng);
  const std::vector<std::int64_t> x = batch.tokens.to_vector(), y = batch.targets.to_vector();
  for (std::int64_t b = 0; b < 3; ++b)
    for (std::int64_t i = 0; i < 7; ++i) {
      EXPECT_EQ(y[static_cast<std::size_t>(b * 7 + i)], x[static_cast<std::size_t>(b * 7 + 6 - i)]);
      EXPECT_GE(x[static_cast<std::size_t>(b * 7 + i)], 0);
      EXPECT_LT(x[static_cast<std::size_t>(b * 7 + i)], 5);
    }
}

TEST(ReverseTask, CrossEntropyAndItsGradient) {
  const Tensor logits = Tensor::from({1, 2, 3}, {1.0f, 2.0f, 0.5f, -1.0f, 0.0f, 3.0f});
  const IndexTensor targets = IndexTensor::from({1, 2}, {1, 0});
  const auto ce = attn::tools::cross_entropy(logits, targets);
  // -log softmax([1, 2, 0.5])[1] and -log softmax([-1, 0, 3])[0], averaged.
  const double l0 = std::log(std::exp(1.0) + std::exp(2.0) + std::exp(0.5)) - 2.0;
  const double l1 = std::log(std::exp(-1.0) + std::exp(0.0) + std::exp(3.0)) + 1.0;
  EXPECT_NEAR(ce.loss, (l0 + l1) / 2, 1e-12);
  EXPECT_DOUBLE_EQ(ce.accuracy, 0.5);
  const std::vector<float> d = ce.dlogits.to_vector();
  const double s0 = std::exp(1.0) + std::exp(2.0) + std::exp(0.5);
  EXPECT_NEAR(d[1], (std::exp(2.0) / s0 - 1) / 2, 1e-7);
  EXPECT_NEAR(d[0], std::exp(1.0) / s0 / 2, 1e-7);
}

TEST(ReverseTask, MirroredFraction) {
  Tensor w = Tensor::zeros({1, 4, 4});
  for (std::int64_t i = 0; i < 4; ++i) w.data()[i * 4 + (3 - i)] = 1.0f;
  EXPECT_DOUBLE_EQ(attn::tools::mirrored_fraction(w), 1.0);
  w.data()[0 * 4 + 0] = 2.0f;  // row 0 now looks at key 0
  EXPECT_DOUBLE_EQ(attn::tools::mirrored_fraction(w), 0.75);
}

// The loss of the model on a fixed batch, in double from the float logits.
double loss_of(ReverseModel& model, const attn::tools::ReverseBatch& batch) {
  return attn::tools::cross_entropy(model.forward(batch.tokens).logits, batch.targets).loss;
}

TEST(ReverseTask, BackwardMatchesFiniteDifferences) {
  const ReverseTaskSizes sizes{.length = 5, .vocab = 6, .width = 8, .heads = 2};
  ReverseModel model(sizes, 4);
  attn::Rng rng(9);
  const auto batch = attn::tools::reverse_batch(3, sizes, rng);
  const auto ce = attn::tools::cross_entropy(model.forward(batch.tokens).logits, batch.targets);
  const attn::NamedParameters grads = model.backward(ce.dlogits);
  const attn::NamedParameters params = model.named_parameters();
  ASSERT_EQ(grads.size(), params.size());
  for (std::size_t n = 0; n < params.size(); ++n) {
    SCOPED_TRACE(params[n].first);
    ASSERT_EQ(grads[n].first, params[n].first);
    Tensor p = params[n].second;
    const std::vector<float> g = grads[n].second.to_vector();
    // Every element of the small tensors, every 7th of the large ones.
    const std::int64_t stride = p.numel() > 64 ? 7 : 1;
    std::vector<double> analytic, numeric;
    for (std::int64_t i = 0; i < p.numel(); i += stride) {
      float* x = p.data() + i;
      const float saved = *x;
      const float h = attn::test::kFiniteDifferenceStepF32 * std::max(1.0f, std::abs(saved));
      *x = saved + h;
      const double up = loss_of(model, batch);
      *x = saved - h;
      const double down = loss_of(model, batch);
      *x = saved;
      numeric.push_back((up - down) / (2.0 * static_cast<double>(h)));
      analytic.push_back(g[static_cast<std::size_t>(i)]);
    }
    EXPECT_LE(attn::test::relative_error(analytic, numeric), attn::test::kFiniteDifferenceBudgetF32);
  }
}

}  // namespace
