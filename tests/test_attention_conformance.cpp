// The conformance driver of scaled dot-product attention: every case, described
// as data, runs on the fused kernel and on the reference (double accumulation,
// the oracle), and the fused result must be within the fused kernel's budget of
// the reference's, norm-wise, for the output, the log-sum-exp and the weights.
// Also: bitwise determinism across thread counts, and the tile-size function.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "attn/mask.hpp"
#include "attn/ops.hpp"
#include "attn/rng.hpp"
#include "attn/threads.hpp"
#include "hwy/targets.h"
#include "attention_cases.hpp"
#include "kernels/cpu/attention_fused.hpp"
#include "kernels/cpu/attention_fused_simd.hpp"
#include "test_util.hpp"
#include "tolerance.hpp"

namespace {

using attn::Align;
using attn::AttentionResult;
using attn::Kernel;
using attn::Mask;
using attn::Rng;
using attn::SdpaOptions;
using attn::Tensor;
using Index = std::int64_t;
using attn::test::Case;
using attn::test::Dense;
using attn::test::Laid;
using attn::test::Layout;
using attn::test::Lengths;
using attn::test::MaskRecipe;
using attn::test::describe;
using attn::test::lay_out;
using attn::test::make_mask;

struct Run {
  AttentionResult r;
  Laid out;
};

Run run_kernel(const Case& c, const Laid& q, const Laid& k, const Laid& v, const SdpaOptions& base,
               Kernel kernel) {
  SdpaOptions o = base;
  o.kernel = kernel;
  Run run{{}, lay_out(Tensor::zeros({c.B, c.Hq, c.Lq, c.Dv}), c.layout)};
  const int saved = attn::num_threads();
  attn::set_num_threads(c.threads);
  run.r = attn::scaled_dot_product_attention_into(q.view, k.view, v.view, run.out.view, o);
  attn::set_num_threads(saved);
  return run;
}

void check_case(const Case& c, std::uint64_t seed) {
  SCOPED_TRACE(describe(c));
  Rng rng(seed);
  const Laid q = lay_out(Tensor::randn({c.B, c.Hq, c.Lq, c.Dk}, rng), c.layout);
  const Laid k = lay_out(Tensor::randn({c.B, c.Hkv, c.Lk, c.Dk}, rng), c.layout);
  const Laid v = lay_out(Tensor::randn({c.B, c.Hkv, c.Lk, c.Dv}, rng), c.layout);
  SdpaOptions o;
  o.mask = make_mask(c, rng);
  o.dropout = {c.dropout, seed};
  o.need_weights = c.need_weights;
  o.weights_before_dropout = c.before_dropout;

  const Run want = run_kernel(c, q, k, v, o, Kernel::reference);
  const Run got = run_kernel(c, q, k, v, o, Kernel::fused);
  ASSERT_EQ(got.r.kernel, Kernel::fused) << got.r.kernel_reason;
  // The reference itself is within kReferenceBudget of the exact result.
  const double budget = attn::test::fused_attention_budget(c.Dk, c.Lk) + attn::test::kReferenceBudget;

  const std::vector<float> out = got.out.view.to_vector(), want_out = want.out.view.to_vector();
  attn::test::expect_no_nan(out, "out");
  EXPECT_LE(attn::test::relative_error(out, want_out), budget) << "out";

  const std::vector<float> want_lse = want.r.lse.to_vector();
  attn::test::expect_lse(got.r.lse, {want_lse.begin(), want_lse.end()}, budget, "fused");
  attn::test::expect_no_nan(got.r.lse.to_vector(), "lse");
  // Rows with nothing allowed: exactly zero output.
  for (std::size_t row = 0; row < want_lse.size(); ++row) {
    if (!std::isinf(want_lse[row])) continue;
    for (Index d = 0; d < c.Dv; ++d)
      ASSERT_EQ(out[row * static_cast<std::size_t>(c.Dv) + static_cast<std::size_t>(d)], 0.0f)
          << "empty row " << row;
  }
  if (c.need_weights) {
    const std::vector<float> w = got.r.weights.to_vector();
    attn::test::expect_no_nan(w, "weights");
    EXPECT_LE(attn::test::relative_error(w, want.r.weights.to_vector()), budget) << "weights";
  }
}

// The hand-picked cases: one axis at a time, then combinations.
std::vector<Case> listed_cases() {
  std::vector<Case> cases;
  const Index odd[] = {1, 7, 63, 65, 127, 129, 257};
  for (Index L : odd) cases.push_back({1, 2, 2, L, L, 16, 16});
  cases.push_back({2, 2, 1, 65, 129, 64, 64});    // Lq < Lk
  cases.push_back({2, 2, 1, 129, 65, 64, 64});    // Lq > Lk
  cases.push_back({1, 1, 1, 1, 257, 128, 128});   // one query
  cases.push_back({1, 1, 1, 257, 1, 128, 128});   // one key
  cases.push_back({1, 2, 2, 70, 90, 24, 40});     // Dk < Dv
  cases.push_back({1, 2, 2, 70, 90, 40, 7});      // Dk > Dv, Dv below a vector
  cases.push_back({1, 1, 1, 33, 33, 1, 1});       // D = 1
  cases.push_back({1, 2, 2, 5, 0, 8, 8});         // no keys: every row empty
  cases.push_back({1, 2, 2, 5, 6, 0, 8});         // Dk = 0: every score 0
  cases.push_back({1, 2, 2, 5, 6, 8, 0});         // Dv = 0: only lse
  cases.push_back({2, 2, 2, 0, 6, 8, 8});         // no queries
  for (Index ratio : {1, 2, 4, 8}) cases.push_back({2, 8, 8 / ratio, 37, 41, 32, 32});
  for (Layout l : {Layout::blhd, Layout::transposed, Layout::misaligned})
    cases.push_back({2, 4, 2, 67, 131, 24, 20, {}, l});

  MaskRecipe all[] = {
      {Align::top_left, Lengths::none, std::nullopt},
      {Align::bottom_right, Lengths::none, std::nullopt},
      {std::nullopt, Lengths::per_batch, std::nullopt},
      {std::nullopt, Lengths::per_query, std::nullopt},
      {std::nullopt, Lengths::none, attn::WindowTerm{5, 2, Align::top_left}},
      {std::nullopt, Lengths::none, attn::WindowTerm{40, 0, Align::bottom_right}},
      {std::nullopt, Lengths::none, attn::WindowTerm{INT64_MAX, INT64_MAX, Align::top_left}},
      {std::nullopt, Lengths::none, std::nullopt, Dense::keep_lq_lk},
      {std::nullopt, Lengths::none, std::nullopt, Dense::block_padding},
      {std::nullopt, Lengths::none, std::nullopt, Dense::none, true},
      {std::nullopt, Lengths::none, std::nullopt, Dense::none, false, 3},
      {Align::top_left, Lengths::per_query, std::nullopt, Dense::none, false, 2},
      {Align::bottom_right, Lengths::per_batch, attn::WindowTerm{17, 3, Align::bottom_right},
       Dense::block_padding, true, 1},
      {Align::top_left, Lengths::none, std::nullopt, Dense::keep_lq_lk, true},
  };
  for (const MaskRecipe& m : all) {
    for (auto [Lq, Lk] : {std::pair<Index, Index>{200, 200}, {65, 300}, {300, 65}, {1, 129}}) {
      Case c{2, 4, 2, Lq, Lk + m.appended, 32, 24, m};
      cases.push_back(c);
    }
  }
  // Dropout and weights.
  for (double p : {0.0, 0.3, 1.0})
    for (bool before : {false, true}) {
      Case c{2, 2, 1, 70, 150, 16, 16, {Align::top_left, Lengths::none, std::nullopt}, Layout::contiguous, p, true, before};
      cases.push_back(c);
    }
  Case dropped{1, 2, 2, 129, 129, 32, 32, {}, Layout::contiguous, 0.2};
  cases.push_back(dropped);
  // Threads, with everything at once.
  for (int threads : {1, 2}) {
    Case c{2, 4, 2, 150, 170, 40, 24,
           {Align::bottom_right, Lengths::per_query, std::nullopt, Dense::keep_lq_lk, true, 2},
           Layout::blhd, 0.1, true, false, threads};
    cases.push_back(c);
  }
  return cases;
}

TEST(AttentionConformance, ListedCases) {
  std::uint64_t seed = 9000;
  for (const Case& c : listed_cases()) check_case(c, seed++);
}

// Every SIMD target that Highway compiled and this CPU runs (on an AVX2 machine
// AVX2, SSE4, SSSE3 and scalar; AVX-512 where there is one), each through every
// third listed case (the list varies one axis at a time, so a third of it still
// meets every mask kind, layout and tail): the targets below the best one run
// nowhere else in the suite, and they take other lane counts (4 floats, 1) and
// code paths (no register transpose). All the cases would take minutes under
// AddressSanitizer, the scalar target most.
TEST(AttentionConformance, ListedCasesOnEveryHighwayTarget) {
  const std::vector<std::int64_t> targets = hwy::SupportedAndGeneratedTargets();
  ASSERT_GE(targets.size(), 2u) << "at least the best target and SSE4";
  const std::vector<Case> cases = listed_cases();
  for (std::int64_t target : targets) {
    hwy::SetSupportedTargetsForTest(target);
    SCOPED_TRACE(hwy::TargetName(target));
    EXPECT_STREQ(attn::detail::fused_target_name(), hwy::TargetName(target));
    for (std::size_t i = 0; i < cases.size(); i += 3) check_case(cases[i], 9500 + i);
  }
  hwy::SetSupportedTargetsForTest(0);
}

// Random shapes, masks, layouts and thread counts.
TEST(AttentionConformance, RandomCases) {
  Rng rng(4242);
  const auto pick = [&rng](Index n) { return static_cast<Index>(rng.uniform() * static_cast<double>(n)); };
  const Index lengths[] = {1, 2, 7, 8, 9, 63, 64, 65, 127, 129, 200};
  const Index dims[] = {1, 3, 8, 16, 17, 32, 64, 80, 128};
  const Index ratios[] = {1, 2, 4, 8};
  const Layout layouts[] = {Layout::contiguous, Layout::blhd, Layout::transposed, Layout::misaligned};
  for (int n = 0; n < 60; ++n) {
    Case c{};
    c.B = 1 + pick(2);
    c.Hkv = 1 + pick(2);
    c.Hq = c.Hkv * ratios[pick(4)];
    c.Lq = lengths[pick(11)];
    c.Lk = lengths[pick(11)];
    c.Dk = dims[pick(9)];
    c.Dv = dims[pick(9)];
    c.layout = layouts[pick(4)];
    c.threads = 1 + static_cast<int>(pick(2));
    MaskRecipe& m = c.mask;
    if (pick(3) == 0) m.causal = pick(2) ? Align::top_left : Align::bottom_right;
    if (pick(4) == 0) m.lengths = pick(2) ? Lengths::per_batch : Lengths::per_query;
    if (pick(5) == 0) m.window = attn::WindowTerm{pick(40), pick(10), pick(2) ? Align::top_left : Align::bottom_right};
    if (pick(5) == 0) m.dense = pick(2) ? Dense::keep_lq_lk : Dense::block_padding;
    m.bias = pick(5) == 0;
    if (pick(6) == 0) m.appended = 1 + pick(std::min<Index>(c.Lk, 3)) ;
    m.appended = std::min(m.appended, c.Lk);
    if (pick(4) == 0) c.dropout = 0.25;
    c.need_weights = pick(3) == 0;
    c.before_dropout = pick(2) == 0;
    check_case(c, 7000 + static_cast<std::uint64_t>(n));
  }
}

// A +inf bias is NaN in the reference (inf - inf), and so in the fused kernel.
TEST(AttentionConformance, PlusInfBiasIsNaNAsInTheReference) {
  Rng rng(77);
  const Tensor x = Tensor::randn({1, 1, 5, 8}, rng);
  Tensor bias = Tensor::zeros({5, 5});
  bias.data()[2 * 5 + 1] = attn::test::kInf;
  SdpaOptions o;
  o.mask = Mask::bias(bias);
  for (Kernel kernel : {Kernel::reference, Kernel::fused}) {
    o.kernel = kernel;
    const AttentionResult r = attn::scaled_dot_product_attention(x, x, x, o);
    const std::vector<float> out = r.out.to_vector(), lse = r.lse.to_vector();
    for (Index i = 0; i < 5; ++i) {
      EXPECT_EQ(std::isnan(out[static_cast<std::size_t>(i * 8)]), i == 2) << attn::to_string(kernel) << " row " << i;
      EXPECT_EQ(std::isnan(lse[static_cast<std::size_t>(i)]), i == 2) << attn::to_string(kernel) << " row " << i;
    }
  }
}

// ---- determinism --------------------------------------------------------------------------

std::vector<float> flat_result(const AttentionResult& r) {
  std::vector<float> all = r.out.to_vector();
  for (const Tensor* t : {&r.lse, &r.weights}) {
    const std::vector<float> v = t->to_vector();
    all.insert(all.end(), v.begin(), v.end());
  }
  return all;
}

TEST(AttentionDeterminism, SameBitsForOneAndTwoThreadsAndAcrossRuns) {
  Rng rng(31);
  // 9 query blocks of 64 per head, 2 heads sharing a key/value head: 36 blocks,
  // which one thread takes 4 to a task and two threads 2 to a task
  // (fused_blocks_per_task), so the bits must not depend on the grouping either.
  const Tensor q = Tensor::randn({1, 4, 560, 64}, rng), k = Tensor::randn({1, 2, 600, 64}, rng),
               v = Tensor::randn({1, 2, 600, 64}, rng);
  ASSERT_NE(attn::detail::fused_blocks_per_task(36, 1), attn::detail::fused_blocks_per_task(36, 2));
  // A window moves each block's first key, and with it, were tiles placed from
  // there, the tiles a row is summed over.
  const Mask masks[] = {
      Mask::causal(Align::bottom_right) & Mask::bias(attn::test::random_bias({560, 600}, 0.05, rng)),
      Mask::sliding_window(100, 30)};
  for (const Mask& mask : masks) {
    SdpaOptions o;
    o.kernel = Kernel::fused;
    o.mask = mask;
    o.dropout = {0.1, 5};
    o.need_weights = true;
    const int saved = attn::num_threads();
    std::vector<std::vector<float>> runs;
    for (int threads : {1, 2, 2, 1}) {
      attn::set_num_threads(threads);
      runs.push_back(flat_result(attn::scaled_dot_product_attention(q, k, v, o)));
    }
    attn::set_num_threads(saved);
    for (std::size_t i = 1; i < runs.size(); ++i) {
      ASSERT_EQ(runs[i].size(), runs[0].size());
      EXPECT_EQ(std::memcmp(runs[i].data(), runs[0].data(), runs[0].size() * sizeof(float)), 0)
          << "run " << i << " differs from run 0";
    }
  }
}

TEST(FusedTiles, BlocksPerTaskLeaveEveryWorkerEightTasks) {
  using attn::detail::fused_blocks_per_task;
  EXPECT_EQ(fused_blocks_per_task(256, 2), 4) << "B=1, H=8, L=2048: capped at 4";
  EXPECT_EQ(fused_blocks_per_task(36, 1), 4);
  EXPECT_EQ(fused_blocks_per_task(36, 2), 2);
  EXPECT_EQ(fused_blocks_per_task(8, 2), 1) << "few blocks: one each";
  EXPECT_EQ(fused_blocks_per_task(0, 2), 1);
  for (Index blocks : {1, 15, 16, 17, 63, 64, 1000})
    for (int workers : {1, 2, 4, 16}) {
      const Index g = fused_blocks_per_task(blocks, workers);
      EXPECT_GE(g, 1);
      EXPECT_LE(g, 4);
      if (g > 1) {
        EXPECT_GE(blocks / g, 8 * workers) << blocks << " blocks, " << workers << " workers";
      }
    }
}

// ---- tiles and dispatch -------------------------------------------------------------------

TEST(FusedTiles, FromHeadDimsAndCaches) {
  using attn::detail::fused_tiles;
  // The measured shapes: Zen 3's 32 KiB L1d and 512 KiB L2.
  EXPECT_EQ(fused_tiles(64, 64).query_rows, 64);
  EXPECT_EQ(fused_tiles(64, 64).key_cols, 128);
  EXPECT_EQ(fused_tiles(128, 128).key_cols, 64);
  EXPECT_EQ(fused_tiles(128, 64).key_cols, 64) << "the wider of Dk and Dv decides";
  EXPECT_EQ(fused_tiles(1, 1).key_cols, 256) << "capped";
  EXPECT_EQ(fused_tiles(4096, 4096).key_cols, 16) << "at least 16";
  EXPECT_EQ(fused_tiles(4096, 4096).query_rows, 4) << "at least one micro-kernel's rows";
  EXPECT_EQ(fused_tiles(0, 0).key_cols, 256) << "empty head dims";
  for (Index d : {1, 7, 16, 64, 65, 100, 128, 256, 512}) {
    for (Index l1 : {16 * 1024, 32 * 1024, 48 * 1024}) {
      const attn::detail::FusedTiles t = fused_tiles(d, d, l1, 512 * 1024);
      EXPECT_EQ(t.key_cols % 16, 0) << d;
      EXPECT_EQ(t.query_rows % 4, 0) << d;
      EXPECT_GE(t.query_rows, 4);
      EXPECT_LE(t.query_rows, 64);
      if (t.key_cols > 16) {
        EXPECT_LE(t.key_cols * d * 4, l1) << "the K^T tile fits in L1, d=" << d;
      }
      EXPECT_LE(fused_tiles(d + 64, d + 64, l1, 512 * 1024).key_cols, t.key_cols) << "monotone in d";
    }
  }
}

TEST(FusedDispatch, ReasonsNameTheKernelTargetAndTiles) {
  const Tensor x = attn::test::randn({1, 2, 9, 64}, 5);
  const AttentionResult r = attn::scaled_dot_product_attention(x, x, x);
  EXPECT_EQ(r.kernel, Kernel::fused);
  EXPECT_THAT(r.kernel_reason, attn::test::HasSubstrs({"automatic", "fused", attn::detail::fused_target_name(),
                                                       "Highway", "Br=64", "Bc=128"}));
  SdpaOptions o;
  o.kernel = Kernel::fused;
  EXPECT_THAT(attn::scaled_dot_product_attention(x, x, x, o).kernel_reason, ::testing::HasSubstr("requested"));
  o.kernel = Kernel::reference;
  EXPECT_EQ(attn::scaled_dot_product_attention(x, x, x, o).kernel, Kernel::reference);
  // d2l's fill stays on the reference under automatic, and fused refuses it.
  o.kernel = Kernel::automatic;
  o.fill = attn::MaskFill::d2l;
  const AttentionResult d2l = attn::scaled_dot_product_attention(x, x, x, o);
  EXPECT_EQ(d2l.kernel, Kernel::reference);
  EXPECT_THAT(d2l.kernel_reason, ::testing::HasSubstr("MaskFill::d2l runs on the reference kernel"));
  o.kernel = Kernel::fused;
  EXPECT_THAT(attn::test::error_of([&] { attn::scaled_dot_product_attention(x, x, x, o); }),
              attn::test::HasSubstrs({"[scaled_dot_product_attention]", "Kernel::fused", "MaskFill::d2l"}));
}

TEST(FusedDispatch, OpsWithoutAFusedKernelRefuseIt) {
  const Tensor q = attn::test::randn({1, 3, 4}, 1), kv = attn::test::randn({1, 5, 4}, 2);
  const Tensor wq = attn::test::randn({6, 4}, 3), wk = attn::test::randn({6, 4}, 4),
               wv = attn::test::randn({1, 6}, 5);
  attn::AdditiveOptions o;
  o.kernel = Kernel::fused;
  EXPECT_THAT(attn::test::error_of([&] { attn::additive_attention(q, kv, kv, wq, wk, wv, o); }),
              attn::test::HasSubstrs({"[additive_attention]", "Kernel::fused"}));
  o.kernel = Kernel::automatic;
  const AttentionResult r = attn::additive_attention(q, kv, kv, wq, wk, wv, o);
  EXPECT_EQ(r.kernel, Kernel::reference);
  EXPECT_FALSE(r.kernel_reason.empty());
}

}  // namespace
