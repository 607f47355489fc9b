// attn::optim::Adam: the update rule against a double-precision evaluation of
// torch.optim.Adam's formula, and its errors. (tests/python/test_adam_parity.py
// compares with torch itself.)
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "attn/error.hpp"
#include "attn/optim.hpp"
#include "test_util.hpp"
#include "tolerance.hpp"

namespace {

using attn::Tensor;
using attn::optim::Adam;
using attn::optim::AdamOptions;

TEST(Adam, StepsAsTheFormulaInDouble) {
  const AdamOptions o{.lr = 0.01, .beta1 = 0.85, .beta2 = 0.995, .eps = 1e-7, .weight_decay = 0.05};
  Tensor w = Tensor::from({2, 3}, {0.5f, -1.0f, 2.0f, 0.0f, 3.0f, -0.25f});
  Adam adam({{"w", w}}, o);
  std::vector<double> p = {0.5, -1.0, 2.0, 0.0, 3.0, -0.25}, m(6, 0.0), v(6, 0.0);
  for (int t = 1; t <= 5; ++t) {
    std::vector<float> g(6);
    for (std::size_t i = 0; i < 6; ++i) g[i] = static_cast<float>(std::sin(3.0 * t + static_cast<double>(i)) * (i + 1));
    adam.step({{"w", Tensor::from({2, 3}, g)}});
    const std::vector<float> got = w.to_vector();
    for (std::size_t i = 0; i < 6; ++i) {
      const double gd = g[i] + o.weight_decay * p[i];
      m[i] = o.beta1 * m[i] + (1 - o.beta1) * gd;
      v[i] = o.beta2 * v[i] + (1 - o.beta2) * gd * gd;
      const double m_hat = m[i] / (1 - std::pow(o.beta1, t));
      const double denom = std::sqrt(v[i]) / std::sqrt(1 - std::pow(o.beta2, t)) + o.eps;
      p[i] -= o.lr * m_hat / denom;
      EXPECT_NEAR(got[i], p[i], attn::test::adam_budget(t, o.lr, p[i]))
          << "step " << t << " element " << i;
    }
  }
  EXPECT_EQ(adam.steps(), 5);
}

TEST(Adam, UpdatesTheModulesStorageInPlace) {
  Tensor w = Tensor::full({4}, 1.0f);
  Tensor handle = w;  // what named_parameters() hands out: the same storage
  Adam adam({{"w", handle}}, {.lr = 0.5});
  adam.step({{"w", Tensor::full({4}, 2.0f)}});
  for (float x : w.to_vector()) EXPECT_FLOAT_EQ(x, 0.5f) << "first step: p - lr sign(g)";
}

TEST(Adam, BadGradientsNameTheParameterAndChangeNothing) {
  Tensor w = Tensor::full({2, 2}, 1.0f), b = Tensor::full({2}, 1.0f);
  Adam adam({{"w", w}, {"b", b}});
  EXPECT_THAT(attn::test::error_of([&] { adam.step({{"w", Tensor::zeros({2, 2})}}); }),
              ::testing::HasSubstr("no gradient for parameter 'b'"));
  EXPECT_THAT(attn::test::error_of([&] { adam.step({{"w", Tensor::zeros({2, 2})}, {"b", Tensor::zeros({3})}}); }),
              ::testing::HasSubstr("gradient 'b' has shape (3), the parameter (2)"));
  EXPECT_THAT(attn::test::error_of([&] {
                adam.step({{"w", Tensor::full({2, 2}, 1.0f)}, {"b", Tensor::full({2}, 1.0f)}, {"c", Tensor::full({1}, 1.0f)}});
              }),
              ::testing::HasSubstr("gradient 'c' names no parameter"));
  EXPECT_EQ(adam.steps(), 0);
  for (float x : w.to_vector()) EXPECT_EQ(x, 1.0f);
  EXPECT_THAT(attn::test::error_of([&] { Adam({{"w", w}}, {.lr = -1.0}); }), ::testing::HasSubstr("invalid learning rate"));
  EXPECT_THAT(attn::test::error_of([&] { Adam({{"w", w}}, {.beta2 = 1.0}); }), ::testing::HasSubstr("invalid beta2"));
  EXPECT_THAT(attn::test::error_of([&] { Adam({{"w", w}, {"w", b}}); }), ::testing::HasSubstr("'w' is listed twice"));
}

}  // namespace
