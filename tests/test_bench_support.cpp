// bench/support: the FLOP formula, the FMA peak probe, the OpenBLAS baseline
// against the reference kernel, and the median.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <optional>
#include <vector>

#include "attn/ops.hpp"
#include "support/blas_attention.hpp"
#include "support/flops.hpp"
#include "support/measure.hpp"
#include "support/peak_fma.hpp"
#include "test_util.hpp"
#include "tolerance.hpp"

namespace attn::test {
namespace {

using bench::allowed_pairs;
using bench::attention_flops;

// Counted by materialising the mask: the oracle of allowed_pairs.
std::int64_t counted_pairs(std::int64_t lq, std::int64_t lk, Align align) {
  const BoolTensor m = materialize(Mask::causal(align), 1, 1, lq, lk);
  std::int64_t n = 0;
  for (std::int64_t i = 0; i < lq; ++i)
    for (std::int64_t j = 0; j < lk; ++j) n += m(0, 0, i, j) ? 1 : 0;
  return n;
}

TEST(AttentionFlops, DenseIsFourBHLqLkD) {
  EXPECT_EQ(attention_flops(2, 3, 5, 7, 11), 4.0 * 2 * 3 * 5 * 7 * 11);
  EXPECT_EQ(allowed_pairs(5, 7, std::nullopt), 35);
}

TEST(AttentionFlops, CausalSquareCountsTheLowerTriangleExactly) {
  for (std::int64_t l : {1, 2, 3, 4, 17, 256}) {
    EXPECT_EQ(allowed_pairs(l, l, Align::top_left), l * (l + 1) / 2) << l;
    EXPECT_EQ(allowed_pairs(l, l, Align::bottom_right), l * (l + 1) / 2) << l;
  }
  EXPECT_EQ(attention_flops(1, 8, 4, 4, 64, Align::top_left), 4.0 * 8 * 10 * 64);
}

TEST(AttentionFlops, CausalRectangularMatchesTheMask) {
  for (std::int64_t lq : {1, 3, 8})
    for (std::int64_t lk : {1, 5, 8, 13})
      for (Align align : {Align::top_left, Align::bottom_right})
        EXPECT_EQ(allowed_pairs(lq, lk, align), counted_pairs(lq, lk, align))
            << lq << " x " << lk << (align == Align::top_left ? " top_left" : " bottom_right");
  // Bottom-right with more queries than keys: the first Lq - Lk queries see nothing.
  EXPECT_EQ(allowed_pairs(5, 2, Align::bottom_right), 3);
}

TEST(PeakFma, IsPositiveAndFinite) {
  const bench::PeakFma one = bench::measure_peak_fma(1, 0.02, 1);
  EXPECT_GT(one.gflops, 0);
  EXPECT_TRUE(std::isfinite(one.gflops));
  EXPECT_GE(one.lanes, 1);
  EXPECT_FALSE(one.target.empty());
  const bench::PeakFma two = bench::measure_peak_fma(2, 0.02, 1);
  EXPECT_GT(two.gflops, 0);
  EXPECT_EQ(two.threads, 2);
}

// The baseline multiplies in float: the float-chain budget over the reductions of
// D (scores) and L (weights times values), against the reference (double inside).
TEST(BlasAttention, MatchesTheReference) {
  for (const bench::BlasVariant variant :
       {bench::BlasVariant::full, bench::BlasVariant::row_blocked})
    for (const bool causal : {false, true})
      for (const std::int64_t length : {1, 7, 300})  // 300: two row blocks, the second short
        for (const int threads : {1, 2}) {
          const std::int64_t d = 16;
          const Shape shape{2, 3, length, d};
          const Tensor q = randn(shape, 1), k = randn(shape, 2), v = randn(shape, 3);
          const Tensor out = Tensor::zeros(shape);
          bench::BlasAttention blas(length, d, variant, threads);
          blas.run(q, k, v, out, causal);
          SdpaOptions options;
          options.kernel = Kernel::reference;
          if (causal) options.mask = Mask::causal();
          const Tensor want = scaled_dot_product_attention(q, k, v, options).out;
          const std::vector<float> got_v(out.data(), out.data() + out.numel());
          const std::vector<float> want_v(want.data(), want.data() + want.numel());
          EXPECT_LE(relative_error(got_v, want_v), float_chain_budget({d, length}))
              << to_string(variant) << " causal " << causal << " L " << length << " threads "
              << threads;
        }
}

TEST(BlasAttention, ScratchIsTheScoresOfOneHeadOrOneBlock) {
  EXPECT_EQ(bench::BlasAttention(1024, 64, bench::BlasVariant::full, 1).extra_bytes(),
            1024 * 1024 * 4);
  EXPECT_EQ(bench::BlasAttention(1024, 64, bench::BlasVariant::row_blocked, 1).extra_bytes(),
            bench::kRowBlock * 1024 * 4);
}

TEST(BlasAttention, RejectsOtherShapes) {
  bench::BlasAttention blas(8, 4, bench::BlasVariant::full, 1);
  const Tensor ok = Tensor::zeros({1, 1, 8, 4}), wrong = Tensor::zeros({1, 1, 8, 5});
  EXPECT_NE(error_of([&] { blas.run(ok, wrong, ok, ok, false); }).find("key"), std::string::npos);
}

TEST(Median, OddEvenAndEmpty) {
  EXPECT_EQ(bench::median({3, 1, 2}), 2);
  EXPECT_EQ(bench::median({4, 1, 3, 2}), 2.5);
  EXPECT_TRUE(std::isnan(bench::median({})));
  EXPECT_GT(bench::peak_rss_bytes(), 0);
  EXPECT_GT(bench::current_rss_bytes(), 0);
}

}  // namespace
}  // namespace attn::test
