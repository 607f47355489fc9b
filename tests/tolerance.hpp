// The one table of error budgets: relative error against a float64 (or long
// double) oracle computed in the test from the same float32 inputs.
//
// Errors are norm-wise, ||got - want||_2 / ||want||_2 over a whole output, so a
// budget does not depend on one tiny element. With unit roundoff u = eps_f32 / 2:
//  - a kernel that accumulates in double and rounds once to float is within u per
//    element; kReferenceBudget allows 4 eps for the rounding of intermediate
//    float results it returns (weights, then output);
//  - a chain that accumulates in float over reductions of lengths n_1, n_2, ... is
//    within gamma_n = n u with n = n_1 + n_2 + ... (Higham's bound for recursive
//    summation); the softmax turns a relative score error d into a weight error of
//    at most 2 |s| d, and scores of unit-variance inputs stay below 8 in the tests,
//    hence the factor 16 of float_chain_budget;
//  - a plain float sum without a softmax, y = sum_k t_k (a dot product, a linear
//    layer), is within |y^ - y| <= gamma_n sum_k |t_k| elementwise (Higham 3.1, any
//    summation order); norm-wise that is gamma_n * condition, with
//    condition = || sum_k |t_k| || / || y || >= 1 computed by the oracle, plus u for
//    rounding the result: float_sum_budget.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

namespace attn::test {

inline constexpr double kEpsF32 = std::numeric_limits<float>::epsilon();
inline constexpr double kReferenceBudget = 4 * kEpsF32;
inline constexpr double kSoftmaxGain = 16;

// Budget for float32 accumulation over the given chain of reduction lengths,
// ending in (or passing through) a softmax.
inline double float_chain_budget(const std::vector<std::int64_t>& reduction_lengths) {
  double n = 0;
  for (std::int64_t len : reduction_lengths) n += static_cast<double>(len);
  return kSoftmaxGain * (n + 4) * kEpsF32 / 2;
}

// Budget for float32 sums over the given reduction lengths with no softmax: gamma_n
// times the sum's condition (1 when no term cancels another), plus the final rounding.
inline double float_sum_budget(const std::vector<std::int64_t>& reduction_lengths,
                               double condition = 1.0) {
  double n = 0;
  for (std::int64_t len : reduction_lengths) n += static_cast<double>(len);
  return (n * condition + 1) * kEpsF32 / 2;
}

// Budget of the fused attention kernel (src/kernels/cpu/attention_fused.cpp), a
// float chain over: the score's dot product (Dk) and the scaling of q folded into
// it (+1); the weighted sum over Lk keys, whose running output and sum are
// rescaled once per key tile (at most Lk / kFusedMinTile more roundings); and the
// vector exp (1 ulp, Highway's bound) with the final division by the sum (+2).
inline constexpr std::int64_t kFusedMinTile = 16;
inline double fused_attention_budget(std::int64_t key_dim, std::int64_t keys) {
  return float_chain_budget({key_dim + 1, keys + (keys + kFusedMinTile - 1) / kFusedMinTile, 2});
}

// Budget of the fused attention backward (attention_fused_backward.cpp) for a
// gradient summed over n terms (dq over the Lk keys; dk and dv over the Lq queries
// of every head in the group), a float chain over: the recomputed score (Dk, +1 for
// the scaling folded into q), its probability 2^(s - lse) (the vector exp and lse
// in units of log2 e: +2), dP = dO . v (Dv) less D (+1), and the gradient's sum (n).
inline double fused_backward_budget(std::int64_t key_dim, std::int64_t value_dim, std::int64_t n) {
  return float_chain_budget({key_dim + 1, 2, value_dim + 1, n});
}

// ... and for the part of a gradient that flows through dS = P (dP - D), which
// cancels (to exactly 0 for a row that sees one key): relative to the magnitudes of
// its terms, P (|dO| . |v| + |D|), as float_sum_budget is to sum_k |t_k|. dP's dot
// product (Dv), less D (+1), times P (+1).
inline double fused_score_grad_budget(std::int64_t value_dim) { return float_sum_budget({value_dim + 2}); }

// Budget of one parameter after `steps` float32 Adam steps, against the formula in
// double, as an absolute error: each step rounds about 10 times (moments, square
// root, denominator, update) an update of size at most about lr (m_hat / sqrt(v_hat)
// is within [-1, 1] for steady gradients), and storing the parameter rounds it.
inline double adam_budget(int steps, double lr, double param) {
  return 10 * steps * kEpsF32 * lr + 2 * kEpsF32 * std::abs(param);
}

// Central finite differences of a float32 computation (a model that runs in float):
// the step cbrt(eps_f32) balances the truncation error (h^2) against the rounding
// of the loss (eps / h), leaving about eps^(2/3) = 2.4e-5 of the loss's scale in
// each difference; gradients 100 times smaller than the loss (the typical ratio
// in the reverse task's model) give 2.4e-3 relative, and the budget allows 4 times
// that.
inline const float kFiniteDifferenceStepF32 = std::cbrt(static_cast<float>(kEpsF32));
inline constexpr double kFiniteDifferenceBudgetF32 = 1e-2;

// ---- gradients ----------------------------------------------------------------------
// A gradient check compares an analytic gradient G (a reference backward: float32
// in and out, double inside) with central differences of the long-double forward at
// the same float32 inputs, over the entries checked. The budget of
// ||G_analytic - G_fd|| adds:
//  - the analytic gradient's error. The backward reads float32 values that a forward
//    rounded (out, lse, a module's activations), each within u of its exact value,
//    and rounds its results once. grad_bounds.hpp follows these roundings through
//    the backward's formulas with magnitudes (first order, as float_sum_budget's
//    condition follows |terms|) to an elementwise bound u E computed from the
//    long-double forward; with the final rounding the error is within
//    u (||E|| + ||G||). The double arithmetic inside adds gamma_n(f64) times the same
//    magnitudes: n < 2^12 terms per sum give less than 1e-12, and kDoubleArithmetic
//    allows 1e-9 (a sixtieth of u);
//  - the error of central differences, D(h) = (f(x + h) - f(x - h)) / 2h with h =
//    kFdStep (exact in long double for float32 x): truncation c h^2 + O(h^4), and
//    rounding eps_ld |f| / h ~ 1e-14 |f|. Richardson's D(h) - D(2h) = -3 c h^2 + O(h^4)
//    measures the first: grad_check.hpp takes 2 |D(h) - D(2h)| / 3 per entry, a factor
//    2 to spare for the remainder and the rounding.
// The budget is absolute, so that a gradient that is zero by cancellation (that of
// a bias constant along a softmax row) is held to the size of its terms, not to 0.
inline constexpr long double kFdStep = 0x1p-16L;
inline constexpr double kDoubleArithmetic = 1e-9;

// The budget of ||G_analytic - G_fd|| from ||E||, ||G|| and the norm of the central
// differences' error estimates.
inline double grad_error_bound(double bound_norm, double grad_norm, double fd_error_norm) {
  return (bound_norm + grad_norm) * (kEpsF32 / 2 + kDoubleArithmetic) + fd_error_norm;
}

// ||got - want|| / ||want||; 0 when both are zero, infinity when only want is.
template <class A, class B>
double relative_error(const A& got, const B& want) {
  if (got.size() != want.size()) return std::numeric_limits<double>::infinity();
  long double diff = 0, norm = 0;
  for (std::size_t i = 0; i < want.size(); ++i) {
    const long double d = static_cast<long double>(got[i]) - static_cast<long double>(want[i]);
    diff += d * d;
    norm += static_cast<long double>(want[i]) * static_cast<long double>(want[i]);
  }
  if (norm == 0) return diff == 0 ? 0.0 : std::numeric_limits<double>::infinity();
  return static_cast<double>(std::sqrt(diff / norm));
}

}  // namespace attn::test
