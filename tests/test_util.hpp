// Helpers shared by the unit tests: error messages, random inputs, NaN checks and
// the comparisons that every op test makes. One copy here, none in the test files.
#pragma once

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <exception>
#include <limits>
#include <string>
#include <vector>

#include "attn/modules.hpp"
#include "attn/ops.hpp"
#include "attn/rng.hpp"
#include "attn/tensor.hpp"
#include "tolerance.hpp"

namespace attn::test {

inline constexpr float kInf = std::numeric_limits<float>::infinity();

// Both kernels every op test runs: the double reference and the one picked for the inputs.
inline constexpr Kernel kKernels[] = {Kernel::reference, Kernel::automatic};

// ---- errors --------------------------------------------------------------------------

// The message of the attn::Error that f throws; "" and a test failure when f throws
// nothing or an exception of another type.
template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const attn::Error& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "threw a non-attn exception: " << e.what();
    return "";
  }
  ADD_FAILURE() << "did not throw attn::Error";
  return "";
}

// Matches a string that contains every one of `parts`:
//   EXPECT_THAT(error_of(...), HasSubstrs({"[linear]", "x (2, 5)"}));
inline ::testing::Matcher<const std::string&> HasSubstrs(const std::vector<std::string>& parts) {
  std::vector<::testing::Matcher<const std::string&>> all;
  for (const std::string& p : parts) all.push_back(::testing::HasSubstr(p));
  return ::testing::AllOfArray(all);
}

// ---- random inputs ----------------------------------------------------------------------

// Standard normal entries from a generator seeded with `seed`.
inline Tensor randn(const Shape& shape, std::uint64_t seed) {
  Rng rng(seed);
  return Tensor::randn(shape, rng);
}

// Each entry true with probability p_true.
inline BoolTensor random_bools(const Shape& shape, double p_true, Rng& rng) {
  BoolTensor t = BoolTensor::zeros(shape);
  t.for_each([&](bool& x) { x = rng.uniform() < p_true; });
  return t;
}

// An additive mask: standard normal entries, each replaced by -inf with probability p_inf.
inline Tensor random_bias(const Shape& shape, double p_inf, Rng& rng) {
  Tensor t = Tensor::randn(shape, rng);
  t.for_each([&](float& x) {
    if (rng.uniform() < p_inf) x = -kInf;
  });
  return t;
}

// ---- checks -----------------------------------------------------------------------------

// No NaN among the values (the contract of every op, masked rows included).
inline void expect_no_nan(const std::vector<float>& v, const std::string& what) {
  for (std::size_t i = 0; i < v.size(); ++i)
    if (std::isnan(v[i])) {
      ADD_FAILURE() << what << ": NaN at flat index " << i;
      return;
    }
}

// Every entry finite (no NaN and no infinity).
inline void expect_finite(const Tensor& t, const std::string& what) {
  std::int64_t bad = 0;
  t.for_each([&](float& x) { bad += std::isfinite(x) ? 0 : 1; });
  EXPECT_EQ(bad, 0) << what << " has " << bad << " non-finite entries";
}

// A log-sum-exp against the oracle's: -inf exactly where the oracle's is (rows with
// nothing allowed), the finite entries within `budget` norm-wise.
inline void expect_lse(const Tensor& got, const std::vector<long double>& want, double budget,
                       const std::string& label) {
  const std::vector<float> g = got.to_vector();
  ASSERT_EQ(g.size(), want.size()) << label;
  std::vector<float> finite_got;
  std::vector<long double> finite_want;
  for (std::size_t r = 0; r < g.size(); ++r) {
    if (std::isinf(want[r])) {
      EXPECT_EQ(g[r], -kInf) << label << ": lse of empty row " << r;
    } else {
      finite_got.push_back(g[r]);
      finite_want.push_back(want[r]);
    }
  }
  EXPECT_LE(relative_error(finite_got, finite_want), budget) << label << ": lse";
}

// ---- modules ------------------------------------------------------------------------------

inline std::vector<std::string> names_of(const NamedParameters& params) {
  std::vector<std::string> names;
  for (const auto& [name, t] : params) names.push_back(name);
  return names;
}

}  // namespace attn::test
