// 2^x in lanes for x <= 0, shared by the fused kernels' softmax steps (forward and
// backward). A Highway "-inl.h" header: included once per target from a file that
// includes hwy/foreach_target.h, hence the toggle guard instead of #pragma once.
#if defined(ATTN_KERNELS_CPU_EXP2_SIMD_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef ATTN_KERNELS_CPU_EXP2_SIMD_INL_H_
#undef ATTN_KERNELS_CPU_EXP2_SIMD_INL_H_
#else
#define ATTN_KERNELS_CPU_EXP2_SIMD_INL_H_
#endif

#include <cstddef>
#include <iterator>

#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace attn::detail::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// 2^x for x <= 0, x in registers: 2^x = 2^n 2^f with n = round(x), f in
// [-1/2, 1/2], 2^f a degree-6 polynomial (Cephes' exp2f coefficients, relative
// error 2e-9 in exact arithmetic, so the result is within an ulp or two of
// float). x is first clamped at -127, whose 2^n has a biased exponent of 0 and
// so is the float 0: x <= -126.5 (-inf marks masked entries) gives 0, with no
// compare and select, and x in (-126.5, -126) a subnormal, correctly rounded.
// NaN stays NaN: x86's max returns its second operand when either is NaN, so x
// goes second. Positive x up to 127 is right too, so that a score that rounding
// leaves an ulp above its row's saved log-sum-exp is safe. About a third of the
// instructions of hn::Exp, which also handles the range reduction of e^x and
// large arguments.
inline constexpr float kExp2Min = -127.0f;
inline constexpr float kExp2Poly[] = {1.535336188319500e-4f, 1.339887440266574e-3f,
                                      9.618437357674640e-3f, 5.550332471162809e-2f,
                                      2.402264791363012e-1f, 6.931472028550421e-1f, 1.0f};
inline constexpr int kFloatMantissaBits = 23;
// x + 2^23 + 127 for x in [-127, 127] is an integer float whose low mantissa bits
// are round(x) + 127, the biased exponent of 2^round(x): one add rounds and
// converts, where Round and ConvertTo take seven instructions on AVX2.
inline constexpr float kExp2Shifter = 8388608.0f + 127.0f;

// x[k] = 2^x[k] for K vectors at once, each step for all of them before the next:
// K chains of dependent steps in flight together. The softmax step's pass over a
// row of scores, 4 vectors at a time against 2 (and without the compare and
// select at -126, before the clamp at -127), took 15% less time per vector
// (time-stamp counter, a 120 x 256 tile, best of 200).
template <int K, class D, class V = hn::Vec<D>>
HWY_INLINE void Exp2NonPositive(D d, V* x) {
  const hn::RebindToUnsigned<D> du;
  V shifted[K], f[K], p[K];
  for (int k = 0; k < K; ++k) x[k] = hn::Max(hn::Set(d, kExp2Min), x[k]);
  for (int k = 0; k < K; ++k) shifted[k] = hn::Add(x[k], hn::Set(d, kExp2Shifter));
  for (int k = 0; k < K; ++k) f[k] = hn::Sub(x[k], hn::Sub(shifted[k], hn::Set(d, kExp2Shifter)));
  for (int k = 0; k < K; ++k) p[k] = hn::MulAdd(hn::Set(d, kExp2Poly[0]), f[k], hn::Set(d, kExp2Poly[1]));
  for (std::size_t i = 2; i < std::size(kExp2Poly); ++i)
    for (int k = 0; k < K; ++k) p[k] = hn::MulAdd(p[k], f[k], hn::Set(d, kExp2Poly[i]));
  for (int k = 0; k < K; ++k)
    x[k] = hn::Mul(p[k], hn::BitCast(d, hn::ShiftLeft<kFloatMantissaBits>(hn::BitCast(du, shifted[k]))));
}

template <class D, class V = hn::Vec<D>>
HWY_INLINE V Exp2NonPositive(D d, V x) {
  Exp2NonPositive<1>(d, &x);
  return x;
}

}  // namespace attn::detail::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#endif  // ATTN_KERNELS_CPU_EXP2_SIMD_INL_H_
