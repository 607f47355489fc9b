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

TEST(AttentionConformance, ListedCases) {
  std::uint64_t seed = 9000;
  for (const Case& c : attn::test::listed_cases()) check_case(c, seed++);
}

// Every Highway target, each through every third listed case (the list varies one
// axis at a time, so a third of it still meets every mask kind, layout and tail).
// All the cases would take minutes under AddressSanitizer, the scalar target most.
TEST(AttentionConformance, ListedCasesOnEveryHighwayTarget) {
  const std::vector<Case> cases = attn::test::listed_cases();
  attn::test::on_every_highway_target([&] {
    for (std::size_t i = 0; i < cases.size(); i += 3) check_case(cases[i], 9500 + i);
  });
}

// Tasks of more than four query blocks: 8 heads of 8 blocks of 120 rows, which one
// thread takes 8 to a task where L2 holds them (fused_task_block_cap) and two
// threads 4; causal, with a bias, so that the blocks of a task see different keys.
TEST(AttentionConformance, TasksOfUpToEightQueryBlocks) {
  const std::int64_t cap = attn::detail::fused_task_block_cap(120, 64, 64, attn::detail::l2_cache_bytes());
  if (cap < 8) GTEST_SKIP() << "this machine's L2 holds " << cap << " blocks of 120 rows at D = 64";
  ASSERT_EQ(attn::detail::fused_blocks_per_task(64, 1, cap), 8);
  for (int threads : {1, 2}) {
    Case c{.B = 1, .Hq = 8, .Hkv = 8, .Lq = 960, .Lk = 960, .Dk = 64, .Dv = 64, .threads = threads};
    c.mask.causal = Align::top_left;
    c.mask.bias = true;
    check_case(c, 9900);
  }
}

// Random shapes, masks, layouts and thread counts.
TEST(AttentionConformance, RandomCases) {
  Rng rng(4242);
  for (int n = 0; n < 60; ++n) check_case(attn::test::random_case(rng), 7000 + static_cast<std::uint64_t>(n));
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
  // 5 query blocks of 120 per head, 4 heads, 2 sharing each key/value head: 20
  // blocks, which one thread takes 2 to a task and two threads 1 to a task
  // (fused_blocks_per_task), so the bits must not depend on the grouping either.
  const Tensor q = Tensor::randn({1, 4, 560, 64}, rng), k = Tensor::randn({1, 2, 600, 64}, rng),
               v = Tensor::randn({1, 2, 600, 64}, rng);
  ASSERT_EQ(attn::detail::fused_tiles(64, 64).query_rows, 120);
  const std::int64_t cap = attn::detail::fused_task_block_cap(120, 64, 64, attn::detail::l2_cache_bytes());
  ASSERT_NE(attn::detail::fused_blocks_per_task(20, 1, cap), attn::detail::fused_blocks_per_task(20, 2, cap));
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
  EXPECT_EQ(fused_blocks_per_task(256, 2, 4), 4) << "256 blocks: capped";
  EXPECT_EQ(fused_blocks_per_task(256, 2, 8), 8);
  EXPECT_EQ(fused_blocks_per_task(1024, 2, 100), 16) << "never above 16";
  EXPECT_EQ(fused_blocks_per_task(36, 1, 8), 4);
  EXPECT_EQ(fused_blocks_per_task(36, 2, 8), 2);
  EXPECT_EQ(fused_blocks_per_task(8, 2, 8), 1) << "few blocks: one each";
  EXPECT_EQ(fused_blocks_per_task(0, 2, 8), 1);
  EXPECT_EQ(fused_blocks_per_task(256, 2, 0), 1) << "a cap under 1 is 1";
  for (Index blocks : {1, 15, 16, 17, 63, 64, 1000})
    for (int workers : {1, 2, 4, 16})
      for (Index cap : {1, 4, 8, 16}) {
        const Index g = fused_blocks_per_task(blocks, workers, cap);
        EXPECT_GE(g, 1);
        EXPECT_LE(g, cap);
        if (g > 1) {
          EXPECT_GE(blocks / g, 8 * workers) << blocks << " blocks, " << workers << " workers";
        }
      }
}

TEST(FusedTiles, TaskBlocksAsManyAsL2HoldsTheirQueriesAndOutputs) {
  using attn::detail::fused_task_block_cap;
  // A block of 120 rows holds 120 (Dk + Dv) floats of Q and O.
  EXPECT_EQ(fused_task_block_cap(120, 128, 128, 512 * 1024), 4) << "Zen 3, D = 128: 4 blocks of 120 KiB";
  EXPECT_EQ(fused_task_block_cap(120, 128, 128, 1024 * 1024), 9) << "Zen 4, D = 128: 8.5 blocks, to the nearest";
  EXPECT_EQ(fused_task_block_cap(120, 64, 64, 512 * 1024), 9);
  EXPECT_EQ(fused_task_block_cap(120, 64, 64, 32 * 1024 * 1024), 16) << "never above 16";
  EXPECT_EQ(fused_task_block_cap(120, 512, 512, 256 * 1024), 1) << "never below 1";
  EXPECT_EQ(fused_task_block_cap(120, 128, 64, 512 * 1024), 6) << "Dk and Dv both count: 5.7 blocks";
  EXPECT_EQ(fused_task_block_cap(0, 0, 0, 0), 1);
}

// ---- tiles and dispatch -------------------------------------------------------------------

TEST(FusedTiles, FromHeadDimsAndCaches) {
  using attn::detail::fused_tiles;
  // The measured shapes: Zen 3's 32 KiB L1d and 512 KiB L2.
  EXPECT_EQ(fused_tiles(64, 64).query_rows, 120);
  EXPECT_EQ(fused_tiles(128, 128).query_rows, 120);
  EXPECT_EQ(fused_tiles(64, 64).key_cols, 256);
  EXPECT_EQ(fused_tiles(128, 128).key_cols, 256);
  EXPECT_EQ(fused_tiles(256, 256).key_cols, 128);
  EXPECT_EQ(fused_tiles(256, 64).key_cols, 128) << "the wider of Dk and Dv decides";
  EXPECT_EQ(fused_tiles(1, 1).key_cols, 256) << "capped";
  EXPECT_EQ(fused_tiles(4096, 4096).key_cols, 16) << "at least 16";
  EXPECT_EQ(fused_tiles(4096, 4096).query_rows, 6) << "at least one row panel";
  EXPECT_EQ(fused_tiles(0, 0).key_cols, 256) << "empty head dims";
  for (Index d : {1, 7, 16, 64, 65, 100, 128, 256, 512}) {
    for (Index l1 : {16 * 1024, 32 * 1024, 48 * 1024}) {
      const attn::detail::FusedTiles t = fused_tiles(d, d, l1, 512 * 1024);
      EXPECT_EQ(t.key_cols % 16, 0) << d;
      EXPECT_EQ(t.query_rows % attn::detail::kTilePanelRows, 0) << "whole row panels, d=" << d;
      EXPECT_GE(t.query_rows, 6);
      EXPECT_LE(t.query_rows, 120);
      if (t.key_cols > 16) {
        EXPECT_LE(t.key_cols * d * 4, 4 * l1) << "the K^T tile fills L1 four times at most, d=" << d;
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
                                                       "Highway", "Br=120", "Bc=256"}));
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
