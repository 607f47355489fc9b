// The fused kernels' 2^x in lanes (exp2_simd-inl.h), through the backward's
// probabilities, which are 2^(s - lse2) per element: within two ulps of float64's
// exp2 over the normal range, 0 at and below -126.5 and for -inf (masked
// entries), a correctly rounded subnormal between, NaN kept.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "kernels/cpu/attention_fused_backward_simd.hpp"
#include "kernels/cpu/attention_fused_simd.hpp"

namespace {

// 2^x for each x, one row, lse2 = 0.
std::vector<float> exp2_lanes(std::vector<float> x) {
  const std::int64_t lanes = attn::detail::fused_lanes();
  const auto n = static_cast<std::int64_t>(x.size());
  const std::int64_t cols = (n + lanes - 1) / lanes * lanes;
  x.resize(static_cast<std::size_t>(cols), 0.0f);
  const float lse2 = 0.0f;
  attn::detail::fused_probabilities(x.data(), 1, cols, cols, &lse2);
  x.resize(static_cast<std::size_t>(n));
  return x;
}

TEST(Exp2Lanes, WithinTwoUlpsOverTheNormalRange) {
  std::vector<float> x;
  for (double v = -126.0; v <= 1.0; v += 0.0137) x.push_back(static_cast<float>(v));
  for (const float v : {0.0f, -0.5f, 0.5f, -1e-7f, -125.5f, -126.0f}) x.push_back(v);
  const std::vector<float> got = exp2_lanes(x);
  for (std::size_t i = 0; i < x.size(); ++i) {
    const double want = std::exp2(static_cast<double>(x[i]));
    EXPECT_LE(std::abs(got[i] - want) / want, 2 * std::numeric_limits<float>::epsilon()) << "x = " << x[i];
  }
}

TEST(Exp2Lanes, ZeroBelowTheSubnormalsAndForMinusInfinity) {
  const float inf = std::numeric_limits<float>::infinity();
  const std::vector<float> got = exp2_lanes({-inf, -1000.0f, -127.0f, -126.6f, -126.5f});
  for (const float g : got) EXPECT_EQ(g, 0.0f);
}

TEST(Exp2Lanes, SubnormalJustBelowTheNormals) {
  // 2^x for x in (-126.5, -126) lies between 2^-126.5 and 2^-126: the float
  // nearest it, to within an ulp of the subnormals (2^-149).
  for (const float x : {-126.4f, -126.25f, -126.1f}) {
    const float got = exp2_lanes({x})[0];
    EXPECT_GT(got, 0.0f) << "x = " << x;
    EXPECT_LT(got, std::numeric_limits<float>::min()) << "x = " << x;
    EXPECT_LE(std::abs(got - std::exp2(static_cast<double>(x))), std::ldexp(1.0, -149)) << "x = " << x;
  }
}

TEST(Exp2Lanes, NaNStaysNaN) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const std::vector<float> got = exp2_lanes({0.0f, nan, -3.0f, nan});
  EXPECT_EQ(got[0], 1.0f);
  EXPECT_TRUE(std::isnan(got[1]));
  EXPECT_EQ(got[2], 0.125f);
  EXPECT_TRUE(std::isnan(got[3]));
}

}  // namespace
