// The micro-kernels of the fused attention kernel, compiled once per Highway
// target (foreach_target) and picked at run time (HWY_DYNAMIC_DISPATCH).
//
// The products of tiles are tile_gemm_simd-inl.h's register-blocked kernel, and
// 2^x is exp2_simd-inl.h's.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/cpu/attention_fused_simd.cpp"
#include "hwy/foreach_target.h"  // IWYU pragma: keep

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <limits>

#include "hwy/highway.h"
#include "kernels/cpu/attention_fused_simd.hpp"
#include "kernels/cpu/exp2_simd-inl.h"
#include "kernels/cpu/tile_gemm_simd-inl.h"

HWY_BEFORE_NAMESPACE();
namespace attn::detail::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;
using Df = hn::ScalableTag<float>;
using Vf = hn::Vec<Df>;

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

std::int64_t LaneCount() { return static_cast<std::int64_t>(hn::Lanes(Df())); }

const char* RunningTargetName() { return hwy::TargetName(HWY_TARGET); }

// s = q kt: q's rows broadcast, kt's loaded.
void Scores(const float* q, std::int64_t ldq, const float* kt, std::int64_t ld_kt, float* s, std::int64_t rows,
            std::int64_t depth, std::int64_t width, std::int64_t ld_s) {
  TileMulAdd<TileInit::zero>({q, ldq, 1, kt, ld_kt, s, ld_s, nullptr, false}, rows, depth, width);
}

// kt[d, c] = k[c, d] for c < cols, d < depth: k's rows `row_stride` apart with unit
// stride along d; kt (depth, ld) with columns [cols, ld) zeroed. On x86 targets
// with 256-bit vectors (AVX2 and the AVX-512 ones) in 8 x 8 blocks transposed in
// registers (24 shuffles for 64 floats, where element by element it is 64 loads
// and 64 stores).
void PackTransposed(const float* HWY_RESTRICT k, std::int64_t row_stride, std::int64_t cols,
                    std::int64_t depth, float* HWY_RESTRICT kt, std::int64_t ld) {
  std::int64_t c0 = 0;
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2
  const hn::Full256<float> d;
  using V8 = hn::Vec<decltype(d)>;
  const hn::Repartition<double, decltype(d)> dd;
  const auto lo64 = [&](V8 a, V8 b) {
    return hn::BitCast(d, hn::InterleaveLower(dd, hn::BitCast(dd, a), hn::BitCast(dd, b)));
  };
  const auto hi64 = [&](V8 a, V8 b) {
    return hn::BitCast(d, hn::InterleaveUpper(dd, hn::BitCast(dd, a), hn::BitCast(dd, b)));
  };
  constexpr std::int64_t kBlock = 8;
  for (; c0 + kBlock <= cols; c0 += kBlock) {
    std::int64_t k0 = 0;
    for (; k0 + kBlock <= depth; k0 += kBlock) {
      V8 r[kBlock];
      for (int i = 0; i < kBlock; ++i) r[i] = hn::LoadU(d, k + (c0 + i) * row_stride + k0);
      // Pairs of rows interleaved, then pairs of pairs: u[j] holds column j of
      // rows 0-3 in its lower half and column j + 4 in its upper half (u[4 + j]:
      // rows 4-7).
      V8 u[kBlock];
      for (int half = 0; half < 2; ++half) {
        const V8* g = r + 4 * half;
        const V8 t0 = hn::InterleaveLower(d, g[0], g[1]), t1 = hn::InterleaveUpper(d, g[0], g[1]);
        const V8 t2 = hn::InterleaveLower(d, g[2], g[3]), t3 = hn::InterleaveUpper(d, g[2], g[3]);
        V8* out = u + 4 * half;
        out[0] = lo64(t0, t2);
        out[1] = hi64(t0, t2);
        out[2] = lo64(t1, t3);
        out[3] = hi64(t1, t3);
      }
      for (int j = 0; j < 4; ++j) {
        hn::StoreU(hn::ConcatLowerLower(d, u[4 + j], u[j]), d, kt + (k0 + j) * ld + c0);
        hn::StoreU(hn::ConcatUpperUpper(d, u[4 + j], u[j]), d, kt + (k0 + j + 4) * ld + c0);
      }
    }
    for (; k0 < depth; ++k0)
      for (std::int64_t i = 0; i < kBlock; ++i) kt[k0 * ld + c0 + i] = k[(c0 + i) * row_stride + k0];
  }
#endif
  for (; c0 < cols; ++c0)
    for (std::int64_t k0 = 0; k0 < depth; ++k0) kt[k0 * ld + c0] = k[c0 * row_stride + k0];
  for (std::int64_t k0 = 0; k0 < depth; ++k0)
    for (std::int64_t c = cols; c < ld; ++c) kt[k0 * ld + c] = 0.0f;
}

// The softmax step in three passes, so that no row waits on another: the new
// maxima (two chains per row), then each row's 2^(s - m_new) and its sum (four
// vectors at a time), then alpha and l for all rows at once, in vectors. One row at a time,
// each with a horizontal max, a horizontal sum and a scalar exp2 in one chain,
// took a fifth of the kernel's time at D = 64.
void SoftmaxStep(float* s, std::int64_t rows, std::int64_t width, std::int64_t ld_s, float* m, float* l,
                 float* alpha, float* row_sum) {
  const Df d;
  const std::int64_t N = LaneCount();
  float* m_new = alpha;  // alpha holds the new maxima until pass 3
  for (std::int64_t r = 0; r < rows; ++r) {
    const float* row = s + r * ld_s;
    Vf a0 = hn::Set(d, kNegInf), a1 = a0;
    std::int64_t c = 0;
    for (; c + 2 * N <= width; c += 2 * N) {
      a0 = hn::Max(a0, hn::LoadU(d, row + c));
      a1 = hn::Max(a1, hn::LoadU(d, row + c + N));
    }
    for (; c < width; c += N) a0 = hn::Max(a0, hn::LoadU(d, row + c));
    m_new[r] = std::max(m[r], hn::GetLane(hn::MaxOfLanes(d, hn::Max(a0, a1))));
  }
  for (std::int64_t r = 0; r < rows; ++r) {
    float* row = s + r * ld_s;
    const Vf vm = hn::Set(d, m_new[r]);
    if (!(m_new[r] > kNegInf && m_new[r] < std::numeric_limits<float>::infinity())) {
      for (std::int64_t c = 0; c < width; c += N) hn::StoreU(hn::Zero(d), d, row + c);
      row_sum[r] = 0.0f;
      continue;
    }
    Vf sum = hn::Zero(d);
    std::int64_t c = 0;
    for (; c + 4 * N <= width; c += 4 * N) {
      Vf e[4];
      for (int k = 0; k < 4; ++k) e[k] = hn::Sub(hn::LoadU(d, row + c + k * N), vm);
      Exp2NonPositive<4>(d, e);
      for (int k = 0; k < 4; ++k) hn::StoreU(e[k], d, row + c + k * N);
      sum = hn::Add(sum, hn::Add(hn::Add(e[0], e[1]), hn::Add(e[2], e[3])));
    }
    for (; c < width; c += N) {
      const Vf e = Exp2NonPositive(d, hn::Sub(hn::LoadU(d, row + c), vm));
      hn::StoreU(e, d, row + c);
      sum = hn::Add(sum, e);
    }
    row_sum[r] = hn::GetLane(hn::SumOfLanes(d, sum));
  }
  // alpha = 2^(m - m_new), 0 when m = -inf; l = l alpha + sum; m = m_new.
  std::int64_t r = 0;
  for (; r + N <= rows; r += N) {
    const Vf mn = hn::LoadU(d, m_new + r);
    const Vf a = Exp2NonPositive(d, hn::Sub(hn::LoadU(d, m + r), mn));
    hn::StoreU(hn::MulAdd(hn::LoadU(d, l + r), a, hn::LoadU(d, row_sum + r)), d, l + r);
    hn::StoreU(mn, d, m + r);
    hn::StoreU(a, d, alpha + r);
  }
  if (r < rows) {
    // The last rows through the same lanes, so that a row's alpha is the same 2^x
    // wherever it sits in the rows of a step.
    constexpr std::size_t kMaxLanes = HWY_MAX_BYTES / sizeof(float);
    HWY_ALIGN float mn[kMaxLanes] = {}, mo[kMaxLanes] = {}, lo[kMaxLanes] = {}, sum[kMaxLanes] = {};
    const auto n = static_cast<std::size_t>(rows - r);
    std::copy_n(m_new + r, n, mn);
    std::copy_n(m + r, n, mo);
    std::copy_n(l + r, n, lo);
    std::copy_n(row_sum + r, n, sum);
    const Vf a = Exp2NonPositive(d, hn::Sub(hn::Load(d, mo), hn::Load(d, mn)));
    hn::Store(hn::MulAdd(hn::Load(d, lo), a, hn::Load(d, sum)), d, lo);
    hn::Store(a, d, sum);
    std::copy_n(lo, n, l + r);
    std::copy_n(mn, n, m + r);
    std::copy_n(sum, n, alpha + r);
  }
  // Rows with nothing allowed yet keep l (and get alpha = 1: exp(-inf - -inf) is
  // NaN); a row whose max is +inf or NaN is NaN in the reference (inf - inf), and
  // l carries it to the output.
  for (r = 0; r < rows; ++r) {
    if (m[r] > kNegInf && m[r] < std::numeric_limits<float>::infinity()) continue;
    alpha[r] = 1.0f;
    l[r] = m[r] == kNegInf ? 0.0f : std::numeric_limits<float>::quiet_NaN();
  }
}

// o = o alpha + p v: p's rows broadcast, v's loaded.
void Pv(const float* p, std::int64_t ld_p, const float* v, std::int64_t ld_v, float* o, const float* alpha,
        std::int64_t rows, std::int64_t cols, std::int64_t ld_o) {
  TileMulAdd<TileInit::load_scaled>({p, ld_p, 1, v, ld_v, o, ld_o, alpha, false}, rows, cols, ld_o);
}

}  // namespace attn::detail::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace attn::detail {

HWY_EXPORT(LaneCount);
HWY_EXPORT(RunningTargetName);
HWY_EXPORT(Scores);
HWY_EXPORT(PackTransposed);
HWY_EXPORT(SoftmaxStep);
HWY_EXPORT(Pv);

std::int64_t fused_lanes() { return HWY_DYNAMIC_DISPATCH(LaneCount)(); }
const char* fused_target_name() { return HWY_DYNAMIC_DISPATCH(RunningTargetName)(); }

void fused_scores(const float* q, std::int64_t ldq, const float* kt, std::int64_t ld_kt, float* s, std::int64_t rows,
                  std::int64_t depth, std::int64_t width, std::int64_t ld_s) {
  HWY_DYNAMIC_DISPATCH(Scores)(q, ldq, kt, ld_kt, s, rows, depth, width, ld_s);
}

void fused_pack_transposed(const float* k, std::int64_t row_stride, std::int64_t cols,
                           std::int64_t depth, float* kt, std::int64_t ld) {
  HWY_DYNAMIC_DISPATCH(PackTransposed)(k, row_stride, cols, depth, kt, ld);
}

void fused_softmax_step(float* s, std::int64_t rows, std::int64_t width, std::int64_t ld_s, float* m,
                        float* l, float* alpha, float* row_sum) {
  HWY_DYNAMIC_DISPATCH(SoftmaxStep)(s, rows, width, ld_s, m, l, alpha, row_sum);
}

void fused_pv(const float* p, std::int64_t ld_p, const float* v, std::int64_t ld_v, float* o,
              const float* alpha, std::int64_t rows, std::int64_t cols, std::int64_t ld_o) {
  HWY_DYNAMIC_DISPATCH(Pv)(p, ld_p, v, ld_v, o, alpha, rows, cols, ld_o);
}

}  // namespace attn::detail
#endif  // HWY_ONCE
