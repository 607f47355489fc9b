// The cases of the attention conformance drivers (forward and backward) as data:
// shapes, head grouping, the layout of q, k, v in memory, and a mask recipe; random
// cases; and the Highway targets they run on.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "attn/mask.hpp"
#include "attn/rng.hpp"
#include "attn/tensor.hpp"
#include "hwy/targets.h"
#include "kernels/cpu/attention_fused_simd.hpp"
#include "test_util.hpp"

namespace attn::test {

using Index = std::int64_t;

// How q, k, v and out are laid out in memory; the kernel sees (B, H, L, D) views.
enum class Layout {
  contiguous,  // (B, H, L, D)
  blhd,        // a (B, L, H*D) projection read as heads: strides (L H D, D, H D, 1)
  transposed,  // (B, H, D, L) memory: the head dim has stride L
  misaligned,  // contiguous, starting one float past a cache line
};

inline const char* name(Layout l) {
  switch (l) {
    case Layout::contiguous: return "contiguous";
    case Layout::blhd: return "blhd";
    case Layout::transposed: return "transposed";
    case Layout::misaligned: return "misaligned";
  }
  return "?";
}

enum class Lengths { none, per_batch, per_query };       // (B) or (B, Lq), with zeros
enum class Dense { none, keep_lq_lk, block_padding };    // (Lq, Lk) keep; (B, 1, 1, Lk) block

// The terms of a case's mask, over the first Lk - appended keys.
struct MaskRecipe {
  std::optional<Align> causal;
  Lengths lengths = Lengths::none;
  std::optional<attn::WindowTerm> window;
  Dense dense = Dense::none;
  bool bias = false;  // (1, H, Lq, Lk) normal entries, 10% -inf
  Index appended = 0;
};

struct Case {
  Index B, Hq, Hkv, Lq, Lk, Dk, Dv;
  MaskRecipe mask{};
  Layout layout = Layout::contiguous;
  double dropout = 0;
  bool need_weights = false, before_dropout = false;
  int threads = 1;
};

inline std::string describe(const Case& c) {
  std::string s = "B=" + std::to_string(c.B) + " Hq=" + std::to_string(c.Hq) + " Hkv=" +
                  std::to_string(c.Hkv) + " Lq=" + std::to_string(c.Lq) + " Lk=" +
                  std::to_string(c.Lk) + " Dk=" + std::to_string(c.Dk) + " Dv=" +
                  std::to_string(c.Dv) + " " + name(c.layout) + " threads=" + std::to_string(c.threads);
  const MaskRecipe& m = c.mask;
  if (m.causal) s += m.causal == Align::top_left ? " causal_tl" : " causal_br";
  if (m.lengths != Lengths::none) s += m.lengths == Lengths::per_batch ? " lengths_b" : " lengths_bq";
  if (m.window) s += " window(" + std::to_string(m.window->left) + "," + std::to_string(m.window->right) + ")";
  if (m.dense != Dense::none) s += m.dense == Dense::keep_lq_lk ? " keep" : " block";
  if (m.bias) s += " bias";
  if (m.appended) s += " appended=" + std::to_string(m.appended);
  if (c.dropout > 0) s += " dropout=" + std::to_string(c.dropout);
  if (c.need_weights) s += c.before_dropout ? " weights_before" : " weights";
  return s;
}

// Memory for a (B, H, L, D) view in `layout`, kept alive beside the view.
struct Laid {
  Tensor storage;
  Tensor view;  // (B, H, L, D)
};

inline Laid lay_out(const Tensor& x, Layout layout) {
  const Index B = x.size(0), H = x.size(1), L = x.size(2), D = x.size(3);
  switch (layout) {
    case Layout::contiguous: return {x, x};
    case Layout::blhd: {
      const Tensor s = x.permute({0, 2, 1, 3}).clone();  // (B, L, H, D)
      return {s, s.permute({0, 2, 1, 3})};
    }
    case Layout::transposed: {
      const Tensor s = x.permute({0, 1, 3, 2}).clone();  // (B, H, D, L)
      return {s, s.permute({0, 1, 3, 2})};
    }
    case Layout::misaligned: {
      const Index n = B * H * L * D;
      const Tensor s = Tensor::zeros({n + 1});
      const Tensor view = s.slice(0, 1, n + 1).reshape({B, H, L, D});
      const std::vector<float> values = x.to_vector();
      std::copy(values.begin(), values.end(), view.data());
      return {s, view};
    }
  }
  return {x, x};
}

inline Mask make_mask(const Case& c, Rng& rng) {
  const MaskRecipe& r = c.mask;
  const Index keys = c.Lk - r.appended;  // the keys the terms describe
  Mask m;
  if (r.causal) m &= Mask::causal(*r.causal);
  if (r.lengths != Lengths::none) {
    const attn::Shape shape = r.lengths == Lengths::per_batch ? attn::Shape{c.B} : attn::Shape{c.B, c.Lq};
    attn::IndexTensor lens = attn::IndexTensor::zeros(shape);
    bool first = true;
    lens.for_each([&](Index& x) {
      // The first length 0: a batch (or query) with nothing allowed.
      x = first ? 0 : static_cast<Index>(rng.uniform() * static_cast<double>(keys + 1));
      x = std::min(x, keys);
      first = false;
    });
    m &= Mask::lengths(lens);
  }
  if (r.window) m &= Mask::sliding_window(r.window->left, r.window->right, r.window->align);
  if (r.dense == Dense::keep_lq_lk) m &= Mask::keep(attn::test::random_bools({c.Lq, keys}, 0.7, rng));
  if (r.dense == Dense::block_padding)
    m &= Mask::block(attn::test::random_bools({c.B, 1, 1, keys}, 0.3, rng));
  if (r.bias) m &= Mask::bias(attn::test::random_bias({1, c.Hq, c.Lq, keys}, 0.1, rng));
  if (r.appended) m = m.append_unmasked_keys(r.appended);
  return m;
}

// The hand-picked cases of both drivers: one axis at a time, then combinations.
inline std::vector<Case> listed_cases() {
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
      {std::nullopt, Lengths::none, WindowTerm{5, 2, Align::top_left}},
      {std::nullopt, Lengths::none, WindowTerm{40, 0, Align::bottom_right}},
      {std::nullopt, Lengths::none, WindowTerm{INT64_MAX, INT64_MAX, Align::top_left}},
      {std::nullopt, Lengths::none, std::nullopt, Dense::keep_lq_lk},
      {std::nullopt, Lengths::none, std::nullopt, Dense::block_padding},
      {std::nullopt, Lengths::none, std::nullopt, Dense::none, true},
      {std::nullopt, Lengths::none, std::nullopt, Dense::none, false, 3},
      {Align::top_left, Lengths::per_query, std::nullopt, Dense::none, false, 2},
      {Align::bottom_right, Lengths::per_batch, WindowTerm{17, 3, Align::bottom_right},
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

// A random case: shapes with odd and vector-sized lengths and dims, GQA ratios,
// layouts, thread counts, and each mask term, dropout and weights now and then.
inline Case random_case(Rng& rng) {
  const auto pick = [&rng](Index n) { return static_cast<Index>(rng.uniform() * static_cast<double>(n)); };
  const Index lengths[] = {1, 2, 7, 8, 9, 63, 64, 65, 127, 129, 200};
  const Index dims[] = {1, 3, 8, 16, 17, 32, 64, 80, 128};
  const Index ratios[] = {1, 2, 4, 8};
  const Layout layouts[] = {Layout::contiguous, Layout::blhd, Layout::transposed, Layout::misaligned};
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
  if (pick(5) == 0) m.window = WindowTerm{pick(40), pick(10), pick(2) ? Align::top_left : Align::bottom_right};
  if (pick(5) == 0) m.dense = pick(2) ? Dense::keep_lq_lk : Dense::block_padding;
  m.bias = pick(5) == 0;
  if (pick(6) == 0) m.appended = 1 + pick(std::min<Index>(c.Lk, 3));
  m.appended = std::min(m.appended, c.Lk);
  if (pick(4) == 0) c.dropout = 0.25;
  c.need_weights = pick(3) == 0;
  c.before_dropout = pick(2) == 0;
  return c;
}

// Runs f() on every SIMD target that Highway compiled and this CPU runs (on an AVX2
// machine AVX2, SSE4, SSSE3 and scalar; AVX-512 where there is one): the targets
// below the best one run nowhere else in the suite, and they take other lane counts
// (4 floats, 1) and code paths (no register transpose).
template <class F>
void on_every_highway_target(F&& f) {
  const std::vector<std::int64_t> targets = hwy::SupportedAndGeneratedTargets();
  ASSERT_GE(targets.size(), 2u) << "at least the best target and SSE4";
  for (std::int64_t target : targets) {
    hwy::SetSupportedTargetsForTest(target);
    SCOPED_TRACE(hwy::TargetName(target));
    EXPECT_STREQ(attn::detail::fused_target_name(), hwy::TargetName(target));
    f();
  }
  hwy::SetSupportedTargetsForTest(0);
}

}  // namespace attn::test
