// Gradient checks: central differences of a long-double forward against an
// analytic gradient, within tolerance.hpp's grad_error_bound. One copy here, used by
// every test_*_backward.cpp.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "attn/rng.hpp"
#include "attn/tensor.hpp"
#include "grad_bounds.hpp"
#include "test_util.hpp"
#include "tolerance.hpp"

namespace attn::test {

// Entries of one tensor checked by central differences: all of them up to this
// many, else this many drawn at random (four forwards each).
inline constexpr std::int64_t kFdMaxEntries = 48;

struct FdGradient {
  std::vector<std::int64_t> picks;  // flat row-major indices of the entries checked
  std::vector<long double> grad;    // d loss / d x at those entries
  std::vector<long double> error;   // the estimate of each one's error (tolerance.hpp)
};

// Central differences of `loss` with respect to the entries of `x`, a contiguous
// long-double tensor that `loss` reads through a handle to the same storage.
inline FdGradient central_differences(const LTensor& x, const std::function<long double()>& loss,
                                      std::uint64_t seed = 1) {
  FdGradient fd;
  const std::int64_t n = x.numel();
  if (n <= kFdMaxEntries) {
    for (std::int64_t e = 0; e < n; ++e) fd.picks.push_back(e);
  } else {
    Rng rng(seed);
    while (static_cast<std::int64_t>(fd.picks.size()) < kFdMaxEntries) {
      const auto e = static_cast<std::int64_t>(rng.next_u64() % static_cast<std::uint64_t>(n));
      if (std::find(fd.picks.begin(), fd.picks.end(), e) == fd.picks.end()) fd.picks.push_back(e);
    }
    std::sort(fd.picks.begin(), fd.picks.end());
  }
  const long double h = kFdStep;
  for (std::int64_t e : fd.picks) {
    long double& entry = x.data()[e];
    const long double at = entry;
    const auto f = [&](long double step) {
      entry = at + step;
      const long double value = loss();
      entry = at;
      return value;
    };
    const long double d1 = (f(h) - f(-h)) / (2 * h);
    const long double d2 = (f(2 * h) - f(-2 * h)) / (4 * h);
    fd.grad.push_back(d1);
    fd.error.push_back(2 * std::abs(d1 - d2) / 3);
  }
  return fd;
}

// sum_n dy[n] y[n]: the loss whose gradient with respect to the output y is dy.
inline long double dot(const std::vector<long double>& dy, const std::vector<long double>& y) {
  long double sum = 0;
  for (std::size_t n = 0; n < y.size(); ++n) sum += dy[n] * y[n];
  return sum;
}

// The values of t in row-major order of the view, in long double.
inline std::vector<long double> widen_values(const Tensor& t) {
  std::vector<long double> v;
  t.for_each([&v](float& x) { v.push_back(x); });
  return v;
}

// ||x[picks]|| of a row-major vector.
inline double norm_at(const std::vector<long double>& x, const std::vector<std::int64_t>& picks) {
  long double sum = 0;
  for (std::int64_t e : picks) sum += x[static_cast<std::size_t>(e)] * x[static_cast<std::size_t>(e)];
  return static_cast<double>(std::sqrt(sum));
}

// The budget of ||G_analytic - G_fd|| over the entries checked: grad_error_bound
// from ||E|| (E row-major in G's shape, empty for none), ||G_fd|| and the central
// differences' error.
inline double budget_of(const FdGradient& fd, const std::vector<long double>& bound) {
  std::vector<std::int64_t> all(fd.grad.size());
  for (std::size_t n = 0; n < all.size(); ++n) all[n] = static_cast<std::int64_t>(n);
  return grad_error_bound(bound.empty() ? 0.0 : norm_at(bound, fd.picks), norm_at(fd.grad, all),
                          norm_at(fd.error, all));
}

// ||got - want|| over all entries.
inline double distance(const std::vector<float>& got, const std::vector<long double>& want) {
  long double sum = 0;
  for (std::size_t n = 0; n < got.size(); ++n) {
    const long double d = static_cast<long double>(got[n]) - want[n];
    sum += d * d;
  }
  return static_cast<double>(std::sqrt(sum));
}

// Expects `analytic` (the expected shape) to match the central differences `fd`
// within the budget that `bound` (u-units, row-major in its shape) gives, and to be
// free of NaN everywhere. Returns ||analytic - fd|| over the entries checked.
inline double expect_gradient(const Tensor& analytic, const Shape& shape, const FdGradient& fd,
                              const std::vector<long double>& bound, const std::string& label) {
  EXPECT_EQ(analytic.shape(), shape) << label << ": gradient shape";
  if (analytic.shape() != shape) return 0;
  const std::vector<float> all = analytic.to_vector();
  expect_no_nan(all, label);
  std::vector<float> got;
  for (std::int64_t e : fd.picks) got.push_back(all[static_cast<std::size_t>(e)]);
  const double error = distance(got, fd.grad);
  EXPECT_LE(error, budget_of(fd, bound))
      << label << ": ||analytic - central differences|| over " << fd.picks.size()
      << " entries (relative error " << relative_error(got, fd.grad) << ")";
  return error;
}

// Entries on a grid of 1/32 with |x| <= 4, drawn from N(0, stddev^2): a product of
// two is a multiple of 2^-10 below 2^4 (15 bits), so sums of up to 2^8 of them are
// exact in float32 (24 bits), and projections and their gradients round nothing
// (grad_bounds.hpp counts on it for modules).
inline Tensor dyadic_randn(const Shape& shape, Rng& rng, double stddev = 1.0) {
  Tensor t = Tensor::zeros(shape);
  t.for_each([&](float& x) {
    const double grid = std::round(rng.normal(0.0, stddev) * 32.0);
    x = static_cast<float>(std::clamp(grid, -128.0, 128.0) / 32.0);
  });
  return t;
}

}  // namespace attn::test
