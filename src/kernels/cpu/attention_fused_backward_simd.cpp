// The lanes of the fused attention backward, compiled once per Highway target
// (foreach_target) and picked at run time (HWY_DYNAMIC_DISPATCH). The products
// are tile_gemm_simd-inl.h's register-blocked kernel, 2^x exp2_simd-inl.h's.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/cpu/attention_fused_backward_simd.cpp"
#include "hwy/foreach_target.h"  // IWYU pragma: keep

#include <cstdint>
#include <limits>

#include "hwy/highway.h"
#include "kernels/cpu/attention_fused_backward_simd.hpp"
#include "kernels/cpu/exp2_simd-inl.h"
#include "kernels/cpu/tile_gemm_simd-inl.h"

HWY_BEFORE_NAMESPACE();
namespace attn::detail::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;
using Df = hn::ScalableTag<float>;
using Vf = hn::Vec<Df>;

void Product(const TileProduct& t, bool accumulate) {
  const TileOperands o{t.a, t.a_row, t.a_col, t.b, t.ld_b, t.c, t.ld_c, nullptr, t.a_far};
  if (accumulate) {
    TileMulAdd<TileInit::load>(o, t.rows, t.depth, t.cols);
  } else {
    TileMulAdd<TileInit::zero>(o, t.rows, t.depth, t.cols);
  }
}

// s = 2^(s - lse2[r]) per row, zeros for a row with nothing allowed; with dp,
// also dp = s (dp - delta[r]).
template <bool kScoreGrad>
HWY_INLINE void ProbabilityRows(float* s, float* dp, std::int64_t rows, std::int64_t cols, std::int64_t ld,
                                const float* lse2, const float* delta) {
  const Df d;
  const auto N = static_cast<std::int64_t>(hn::Lanes(d));
  for (std::int64_t r = 0; r < rows; ++r) {
    float* row = s + r * ld;
    if (lse2[r] == -std::numeric_limits<float>::infinity()) {
      for (std::int64_t c = 0; c < cols; c += N) {
        hn::StoreU(hn::Zero(d), d, row + c);
        if constexpr (kScoreGrad) hn::StoreU(hn::Zero(d), d, dp + r * ld + c);
      }
      continue;
    }
    const Vf lse = hn::Set(d, lse2[r]);
    for (std::int64_t c = 0; c < cols; c += N) {
      const Vf P = Exp2NonPositive(d, hn::Sub(hn::LoadU(d, row + c), lse));
      hn::StoreU(P, d, row + c);
      if constexpr (kScoreGrad) {
        float* g = dp + r * ld + c;
        hn::StoreU(hn::Mul(P, hn::Sub(hn::LoadU(d, g), hn::Set(d, delta[r]))), d, g);
      }
    }
  }
}

void Probabilities(float* s, std::int64_t rows, std::int64_t cols, std::int64_t ld, const float* lse2) {
  ProbabilityRows<false>(s, nullptr, rows, cols, ld, lse2, nullptr);
}

void ProbabilitiesAndScoreGrad(float* s, float* dp, std::int64_t rows, std::int64_t cols, std::int64_t ld,
                               const float* lse2, const float* delta) {
  ProbabilityRows<true>(s, dp, rows, cols, ld, lse2, delta);
}

}  // namespace attn::detail::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace attn::detail {

HWY_EXPORT(Product);
HWY_EXPORT(Probabilities);
HWY_EXPORT(ProbabilitiesAndScoreGrad);

void fused_tile_product(const TileProduct& t, bool accumulate) { HWY_DYNAMIC_DISPATCH(Product)(t, accumulate); }

void fused_probabilities(float* s, std::int64_t rows, std::int64_t cols, std::int64_t ld, const float* lse2) {
  HWY_DYNAMIC_DISPATCH(Probabilities)(s, rows, cols, ld, lse2);
}

void fused_probabilities_and_score_grad(float* s, float* dp, std::int64_t rows, std::int64_t cols,
                                        std::int64_t ld, const float* lse2, const float* delta) {
  HWY_DYNAMIC_DISPATCH(ProbabilitiesAndScoreGrad)(s, dp, rows, cols, ld, lse2, delta);
}

}  // namespace attn::detail
#endif  // HWY_ONCE
