// Helpers shared by the unit tests: error messages, random inputs, NaN checks and
// the comparisons that every op test makes. One copy here, none in the test files.
#pragma once

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iterator>
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

// ---- files ------------------------------------------------------------------------------

// A fresh directory per test (named after its suite, test and process), so that
// tests may run in parallel.
inline std::filesystem::path test_dir() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::filesystem::path dir =
      std::filesystem::temp_directory_path() /
      ("attn_test_" + std::string(info->test_suite_name()) + "_" + info->name() + "_" +
       std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  return dir;
}

// The whole contents of the file at `path`; "" when it cannot be read.
inline std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
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

// ---- statistics ----------------------------------------------------------------------------
// Statistical checks of random draws (dropout, initialisation, generators) allow six
// standard deviations: a correct implementation fails one with probability
// P(|Z| > 6) ~ 2e-9, while a wrong rate or spread shows up as tens of them.

inline constexpr double kSixSigmas = 6;
inline constexpr double kSixSigmaTail = 1.97e-9;  // P(|Z| > 6) for a standard normal Z

// `hits` of `trials` Bernoulli(p) draws: the fraction within six binomial standard
// deviations, sqrt(p (1 - p) / trials), of p.
inline void expect_binomial_fraction(std::int64_t hits, std::int64_t trials, double p,
                                     const std::string& what) {
  ASSERT_GT(trials, 0) << what;
  const double n = static_cast<double>(trials);
  const double fraction = static_cast<double>(hits) / n;
  const double tolerance = kSixSigmas * std::sqrt(p * (1 - p) / n);
  EXPECT_NEAR(fraction, p, tolerance) << what << ": " << hits << " of " << trials
                                      << " at p = " << p << " (six sigmas: " << tolerance << ")";
}

// n draws of U(-a, a) all stay within |x| < t a with probability t^n; the t at which
// that is the six-sigma tail, so that "max |x| > t a" fails by chance as rarely as a
// six-sigma check.
inline double uniform_max_fraction(std::int64_t n) {
  return std::pow(kSixSigmaTail, 1.0 / static_cast<double>(n));
}

// ---- modules ------------------------------------------------------------------------------

inline std::vector<std::string> names_of(const NamedParameters& params) {
  std::vector<std::string> names;
  for (const auto& [name, t] : params) names.push_back(name);
  return names;
}

}  // namespace attn::test
