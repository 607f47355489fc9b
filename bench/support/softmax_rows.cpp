// softmax_rows, compiled once per Highway target and dispatched to the best one the
// CPU has. A scalar std::exp per score made the softmax most of the baseline's time
// (D = 64, L = 4096): the baseline must lose to the fused kernel on its arithmetic,
// not on an exp that no framework would run one lane at a time.
#include "support/softmax_rows.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "support/softmax_rows.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>
#include <hwy/contrib/math/math-inl.h>

HWY_BEFORE_NAMESPACE();
namespace attn::bench::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

void SoftmaxRows(float* s, std::int64_t rows, std::int64_t n, std::int64_t ld, std::int64_t r0, bool causal) {
  const hn::ScalableTag<float> d;
  const auto N = static_cast<std::int64_t>(hn::Lanes(d));
  constexpr float kNegInf = -std::numeric_limits<float>::infinity();
  for (std::int64_t r = 0; r < rows; ++r) {
    float* row = s + r * ld;
    const std::int64_t allowed = causal ? std::min(n, r0 + r + 1) : n;
    auto vmax = hn::Set(d, kNegInf);
    std::int64_t j = 0;
    for (; j + N <= allowed; j += N) vmax = hn::Max(vmax, hn::LoadU(d, row + j));
    float max = hn::GetLane(hn::MaxOfLanes(d, vmax));
    for (; j < allowed; ++j) max = std::max(max, row[j]);

    const auto vm = hn::Set(d, max);
    auto vsum = hn::Zero(d);
    for (j = 0; j + N <= allowed; j += N) {
      const auto e = hn::Exp(d, hn::Sub(hn::LoadU(d, row + j), vm));
      hn::StoreU(e, d, row + j);
      vsum = hn::Add(vsum, e);
    }
    float sum = hn::GetLane(hn::SumOfLanes(d, vsum));
    for (; j < allowed; ++j) sum += row[j] = std::exp(row[j] - max);

    const float inv = 1.0f / sum;
    const auto vinv = hn::Set(d, inv);
    for (j = 0; j + N <= allowed; j += N) hn::StoreU(hn::Mul(hn::LoadU(d, row + j), vinv), d, row + j);
    for (; j < allowed; ++j) row[j] *= inv;
    std::fill(row + allowed, row + n, 0.0f);
  }
}

}  // namespace attn::bench::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace attn::bench {

HWY_EXPORT(SoftmaxRows);

void softmax_rows(float* s, std::int64_t rows, std::int64_t n, std::int64_t ld, std::int64_t r0, bool causal) {
  HWY_DYNAMIC_DISPATCH(SoftmaxRows)(s, rows, n, ld, r0, causal);
}

}  // namespace attn::bench
#endif  // HWY_ONCE
