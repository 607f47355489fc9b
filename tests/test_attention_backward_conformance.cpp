// The conformance driver of the fused attention backward: every case, described
// as data (attention_cases.hpp), runs the fused backward and the reference
// backward (double accumulation, the oracle) on the same q, k, v, dout and the
// same saved out and lse, and the fused dq, dk and dv must be within the fused
// backward's budget of the reference's, norm-wise. Also: bitwise determinism
// across thread counts, the key chunks, and the dispatch.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "attention_cases.hpp"
#include "attn/backward.hpp"
#include "attn/mask.hpp"
#include "attn/ops.hpp"
#include "attn/rng.hpp"
#include "attn/threads.hpp"
#include "kernels/cpu/attention_fused_backward.hpp"
#include "kernels/cpu/attention_fused_simd.hpp"
#include "test_util.hpp"
#include "tolerance.hpp"

namespace {

using attn::Align;
using attn::AttentionGrads;
using attn::AttentionResult;
using attn::BackwardOptions;
using attn::Kernel;
using attn::Mask;
using attn::Rng;
using attn::SdpaOptions;
using attn::Tensor;
using attn::test::Case;
using attn::test::Dense;
using attn::test::Laid;
using attn::test::Layout;
using attn::test::Lengths;
using attn::test::MaskRecipe;
using attn::test::describe;
using attn::test::lay_out;
using attn::test::make_mask;
using Index = std::int64_t;

struct Inputs {
  Laid q, k, v, dout;
  SdpaOptions options;
  AttentionResult forward;  // the forward's out and lse
};

Inputs make_inputs(const Case& c, std::uint64_t seed) {
  Rng rng(seed);
  Inputs x{lay_out(Tensor::randn({c.B, c.Hq, c.Lq, c.Dk}, rng), c.layout),
           lay_out(Tensor::randn({c.B, c.Hkv, c.Lk, c.Dk}, rng), c.layout),
           lay_out(Tensor::randn({c.B, c.Hkv, c.Lk, c.Dv}, rng), c.layout),
           lay_out(Tensor::randn({c.B, c.Hq, c.Lq, c.Dv}, rng), c.layout),
           {},
           {}};
  x.options.mask = make_mask(c, rng);
  x.options.dropout = {c.dropout, seed};
  // The fused forward: both backward kernels read the same out and lse, whichever
  // forward gave them, and the reference forward would double the test's time under
  // the sanitizers.
  x.forward = attn::scaled_dot_product_attention(x.q.view, x.k.view, x.v.view, x.options);
  return x;
}

AttentionGrads run_backward(const Case& c, const Inputs& x, Kernel kernel) {
  const int saved = attn::num_threads();
  attn::set_num_threads(c.threads);
  AttentionGrads g = attn::scaled_dot_product_attention_backward(
      x.q.view, x.k.view, x.v.view, x.forward.out, x.forward.lse, x.dout.view, x.options,
      BackwardOptions{.kernel = kernel});
  attn::set_num_threads(saved);
  return g;
}

double norm(const std::vector<float>& x) {
  double sum = 0;
  for (float v : x) sum += static_cast<double>(v) * v;
  return std::sqrt(sum);
}

// dS_ij = P_ij (dP_ij - D_i) cancels: a row that sees one key has P = 1 and dP = D,
// so that its dq and its key's dk are exactly 0, and the fused kernel's float dP and
// D leave their roundings there. Those are relative to the terms' magnitudes,
// A_ij = P_ij (m Sum_d |dO_id v_jd| + |D_i|) with m the dropout's keep scale, not to
// |dS_ij|; through dq = scale dS K and dk = scale dS^T Q they give the norms of
// G_q = scale A |K| and G_k = scale A^T |Q| (summed over the group's heads) that
// fused_score_grad_budget applies to.
struct Magnitudes {
  double dq = 0, dk = 0;
};

Magnitudes score_grad_magnitudes(const Case& c, const Inputs& x) {
  SdpaOptions o = x.options;
  o.need_weights = true;
  o.weights_before_dropout = true;
  const std::vector<float> P = attn::scaled_dot_product_attention(x.q.view, x.k.view, x.v.view, o).weights.to_vector();
  const std::vector<float> q = x.q.view.to_vector(), k = x.k.view.to_vector(), v = x.v.view.to_vector(),
                           dout = x.dout.view.to_vector(), out = x.forward.out.to_vector();
  const double keep = c.dropout < 1.0 ? 1.0 / (1.0 - c.dropout) : 0.0;
  const double scale = c.Dk > 0 ? 1.0 / std::sqrt(static_cast<double>(c.Dk)) : 1.0;
  const Index group = c.Hq / c.Hkv;
  std::vector<double> gq(q.size()), gk(k.size());
  for (Index b = 0; b < c.B; ++b)
    for (Index h = 0; h < c.Hq; ++h)
      for (Index i = 0; i < c.Lq; ++i) {
        const Index row = (b * c.Hq + h) * c.Lq + i;
        const float* dO = dout.data() + row * c.Dv;  // Dv may be 0
        double D = 0;
        for (Index d = 0; d < c.Dv; ++d) D += static_cast<double>(dO[d]) * out[static_cast<std::size_t>(row * c.Dv + d)];
        for (Index j = 0; j < c.Lk; ++j) {
          const Index key = (b * c.Hkv + h / group) * c.Lk + j;
          double dot = 0;
          for (Index d = 0; d < c.Dv; ++d) dot += std::abs(static_cast<double>(dO[d]) * v[static_cast<std::size_t>(key * c.Dv + d)]);
          const double A = P[static_cast<std::size_t>(row * c.Lk + j)] * (keep * dot + std::abs(D));
          for (Index d = 0; d < c.Dk; ++d) {
            gq[static_cast<std::size_t>(row * c.Dk + d)] += scale * A * std::abs(k[static_cast<std::size_t>(key * c.Dk + d)]);
            gk[static_cast<std::size_t>(key * c.Dk + d)] += scale * A * std::abs(q[static_cast<std::size_t>(row * c.Dk + d)]);
          }
        }
      }
  const auto norm2 = [](const std::vector<double>& x) {
    double sum = 0;
    for (double e : x) sum += e * e;
    return std::sqrt(sum);
  };
  return {norm2(gq), norm2(gk)};
}

void check_case(const Case& c, std::uint64_t seed) {
  SCOPED_TRACE(describe(c));
  const Inputs x = make_inputs(c, seed);
  const AttentionGrads want = run_backward(c, x, Kernel::reference);
  const AttentionGrads got = run_backward(c, x, Kernel::fused);
  ASSERT_EQ(got.kernel, Kernel::fused) << got.kernel_reason;
  const Index group = c.Hkv > 0 ? c.Hq / c.Hkv : 1;
  const Magnitudes magnitude = score_grad_magnitudes(c, x);
  const double cancel = attn::test::fused_score_grad_budget(c.Dv);
  // dq sums over the keys, dk and dv over the queries of every head in the group;
  // dv does not go through dS. The reference is within kReferenceBudget of exact.
  const struct {
    const char* name;
    const Tensor& got;
    const Tensor& want;
    double budget;
    double magnitude;
  } grads[] = {
      {"dq", got.dq, want.dq, attn::test::fused_backward_budget(c.Dk, c.Dv, c.Lk), magnitude.dq},
      {"dk", got.dk, want.dk, attn::test::fused_backward_budget(c.Dk, c.Dv, c.Lq * group), magnitude.dk},
      {"dv", got.dv, want.dv, attn::test::fused_backward_budget(c.Dk, c.Dv, c.Lq * group), 0.0},
  };
  for (const auto& g : grads) {
    ASSERT_EQ(g.got.shape(), g.want.shape()) << g.name;
    const std::vector<float> values = g.got.to_vector(), reference = g.want.to_vector();
    attn::test::expect_no_nan(values, g.name);
    std::vector<float> diff(values.size());
    for (std::size_t n = 0; n < values.size(); ++n) diff[n] = values[n] - reference[n];
    EXPECT_LE(norm(diff), (g.budget + attn::test::kReferenceBudget) * norm(reference) + cancel * g.magnitude)
        << g.name << ": relative error " << attn::test::relative_error(values, reference);
  }
  // Rows with nothing allowed: exactly zero dq.
  const std::vector<float> lse = x.forward.lse.to_vector(), dq = got.dq.to_vector();
  for (std::size_t row = 0; row < lse.size(); ++row) {
    if (!std::isinf(lse[row])) continue;
    for (Index d = 0; d < c.Dk; ++d)
      ASSERT_EQ(dq[row * static_cast<std::size_t>(c.Dk) + static_cast<std::size_t>(d)], 0.0f) << "empty row " << row;
  }
}

// Under AddressSanitizer the oracles (the reference backward, the magnitudes) run
// 20 times slower, and all the cases took 80 s: that build takes every other case
// (20 s), the optimised build all of them.
#ifdef __SANITIZE_ADDRESS__
constexpr std::size_t kListedStride = 2;
#else
constexpr std::size_t kListedStride = 1;
#endif

TEST(AttentionBackwardConformance, ListedCases) {
  const std::vector<Case> cases = attn::test::listed_cases();
  for (std::size_t i = 0; i < cases.size(); i += kListedStride) check_case(cases[i], 12000 + i);
}

// Every Highway target, each through every fourth listed case.
TEST(AttentionBackwardConformance, ListedCasesOnEveryHighwayTarget) {
  const std::vector<Case> cases = attn::test::listed_cases();
  attn::test::on_every_highway_target([&] {
    for (std::size_t i = 0; i < cases.size(); i += 4) check_case(cases[i], 12500 + i);
  });
}

// Random shapes, masks, layouts, dropout and thread counts (need_weights has no part
// in a backward).
TEST(AttentionBackwardConformance, RandomCases) {
  Rng rng(5151);
  for (int n = 0; n < 40; ++n) check_case(attn::test::random_case(rng), 8000 + static_cast<std::uint64_t>(n));
}

// ---- determinism --------------------------------------------------------------------------

std::vector<float> flat_grads(const AttentionGrads& g) {
  std::vector<float> all;
  for (const Tensor* t : {&g.dq, &g.dk, &g.dv}) {
    const std::vector<float> v = t->to_vector();
    all.insert(all.end(), v.begin(), v.end());
  }
  return all;
}

TEST(AttentionBackwardDeterminism, SameBitsForOneAndTwoThreadsAndAcrossRuns) {
  Rng rng(32);
  // 2 key/value heads of 5 key tiles of 128 (D = 128): 5 chunks each, so that 10
  // tasks add their partial dQ; 2 query heads per key/value head.
  const Tensor q = Tensor::randn({1, 4, 560, 128}, rng), k = Tensor::randn({1, 2, 600, 128}, rng),
               v = Tensor::randn({1, 2, 600, 128}, rng), dout = Tensor::randn({1, 4, 560, 128}, rng);
  ASSERT_EQ(attn::detail::fused_backward_tiles(128, 128).key_cols, 128);
  ASSERT_EQ(attn::detail::fused_backward_key_chunks(1, 2, 5), 5);
  const Mask masks[] = {
      Mask::causal(Align::bottom_right) & Mask::bias(attn::test::random_bias({560, 600}, 0.05, rng)),
      Mask::sliding_window(100, 30)};
  for (const Mask& mask : masks) {
    SdpaOptions o;
    o.mask = mask;
    o.dropout = {0.1, 5};
    const AttentionResult r = attn::scaled_dot_product_attention(q, k, v, o);
    const int saved = attn::num_threads();
    std::vector<std::vector<float>> runs;
    for (int threads : {1, 2, 2, 1}) {
      attn::set_num_threads(threads);
      const AttentionGrads g = attn::scaled_dot_product_attention_backward(q, k, v, r.out, r.lse, dout, o,
                                                                          BackwardOptions{.kernel = Kernel::fused});
      runs.push_back(flat_grads(g));
    }
    attn::set_num_threads(saved);
    for (std::size_t i = 1; i < runs.size(); ++i) {
      ASSERT_EQ(runs[i].size(), runs[0].size());
      EXPECT_EQ(std::memcmp(runs[i].data(), runs[0].data(), runs[0].size() * sizeof(float)), 0)
          << "run " << i << " differs from run 0";
    }
  }
}

TEST(FusedBackwardTiles, FromHeadDims) {
  using attn::detail::fused_backward_tiles;
  EXPECT_EQ(fused_backward_tiles(64, 64).key_cols, 256);
  EXPECT_EQ(fused_backward_tiles(32, 32).key_cols, 256) << "capped at 256";
  EXPECT_EQ(fused_backward_tiles(128, 128).key_cols, 128);
  EXPECT_EQ(fused_backward_tiles(128, 256).key_cols, 64) << "the wider of Dk and Dv decides";
  EXPECT_EQ(fused_backward_tiles(4096, 4096).key_cols, 16) << "at least 16";
  EXPECT_EQ(fused_backward_tiles(0, 0).key_cols, 256) << "empty head dims";
  for (Index d : {1, 7, 64, 100, 128, 200, 512}) {
    const attn::detail::FusedBackwardTiles t = fused_backward_tiles(d, d);
    EXPECT_EQ(t.query_rows, 120);
    EXPECT_EQ(t.query_rows % attn::detail::kTilePanelRows, 0) << "whole row panels";
    EXPECT_EQ(t.key_cols % 16, 0) << d;
    if (t.key_cols > 16) {
      EXPECT_LE(t.key_cols * d, 128 * 128) << "a key tile's five Bc x D buffers stay in L2, d=" << d;
    }
  }
}

TEST(FusedBackwardTiles, ChunksCutTheWorkEvenly) {
  using attn::detail::fused_backward_chunk_bounds;
  using Bounds = std::vector<std::int64_t>;
  EXPECT_EQ(fused_backward_chunk_bounds({5, 5, 5, 5, 5, 5, 5, 5}, 2), (Bounds{0, 4, 8}));
  EXPECT_EQ(fused_backward_chunk_bounds({5, 5, 5, 5, 5, 5, 5, 5}, 4), (Bounds{0, 2, 4, 6, 8}));
  // Under a causal mask tile t is seen by the queries from t on: 16 - t blocks. Half
  // the work (68 of 136) lies in the first 5 tiles (70).
  Bounds causal;
  for (std::int64_t t = 0; t < 16; ++t) causal.push_back(16 - t);
  EXPECT_EQ(fused_backward_chunk_bounds(causal, 2), (Bounds{0, 5, 16}));
  EXPECT_EQ(fused_backward_chunk_bounds({100, 0, 0, 0}, 4), (Bounds{0, 1, 2, 3, 4})) << "a tile per chunk at least";
  EXPECT_EQ(fused_backward_chunk_bounds({0, 0, 0, 100}, 2), (Bounds{0, 3, 4}));
  EXPECT_EQ(fused_backward_chunk_bounds({7}, 1), (Bounds{0, 1}));
}

TEST(FusedBackwardTiles, KeyChunksDependOnTheShapeOnly) {
  using attn::detail::fused_backward_key_chunks;
  EXPECT_EQ(fused_backward_key_chunks(1, 8, 32), 2) << "B=1, H=8: 16 tasks";
  EXPECT_EQ(fused_backward_key_chunks(2, 8, 32), 1);
  EXPECT_EQ(fused_backward_key_chunks(1, 1, 32), 16);
  EXPECT_EQ(fused_backward_key_chunks(1, 1, 3), 3) << "at most one chunk per tile";
  EXPECT_EQ(fused_backward_key_chunks(1, 1, 0), 1);
  EXPECT_EQ(fused_backward_key_chunks(0, 0, 5), 5);
}

// ---- dispatch ------------------------------------------------------------------------------

TEST(FusedBackwardDispatch, ReasonsNameTheKernelAndWhyTheReferenceRan) {
  const Tensor x = attn::test::randn({1, 2, 9, 64}, 5), dout = attn::test::randn({1, 2, 9, 64}, 6);
  SdpaOptions o;
  o.mask = Mask::bias(attn::test::randn({9, 9}, 7));
  const AttentionResult r = attn::scaled_dot_product_attention(x, x, x, o);
  const auto backward = [&](const SdpaOptions& so, const BackwardOptions& bo) {
    return attn::scaled_dot_product_attention_backward(x, x, x, r.out, r.lse, dout, so, bo);
  };
  const AttentionGrads automatic = backward(o, {});
  EXPECT_EQ(automatic.kernel, Kernel::fused);
  EXPECT_THAT(automatic.kernel_reason,
              attn::test::HasSubstrs({"automatic", "fused CPU backward", attn::detail::fused_target_name(), "Br=120",
                                      "Bc=256", "key chunk"}));
  EXPECT_THAT(backward(o, {.kernel = Kernel::fused}).kernel_reason, ::testing::HasSubstr("requested"));
  EXPECT_EQ(backward(o, {.kernel = Kernel::reference}).kernel_reason, "requested");

  const AttentionGrads with_bias = backward(o, {.need_bias_grad = true});
  EXPECT_EQ(with_bias.kernel, Kernel::reference);
  EXPECT_THAT(with_bias.kernel_reason, ::testing::HasSubstr("need_bias_grad"));
  EXPECT_EQ(with_bias.dbias.size(), 1u);
  EXPECT_THAT(attn::test::error_of([&] { backward(o, {.need_bias_grad = true, .kernel = Kernel::fused}); }),
              attn::test::HasSubstrs({"[scaled_dot_product_attention_backward]", "Kernel::fused", "need_bias_grad",
                                      "query (1, 2, 9, 64)"}));
  SdpaOptions d2l = o;
  d2l.fill = attn::MaskFill::d2l;
  EXPECT_THAT(backward(d2l, {}).kernel_reason, ::testing::HasSubstr("MaskFill::d2l runs on the reference"));
  EXPECT_THAT(attn::test::error_of([&] { backward(d2l, {.kernel = Kernel::fused}); }),
              attn::test::HasSubstrs({"Kernel::fused", "MaskFill::d2l"}));
}

}  // namespace
