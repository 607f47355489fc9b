// The cases of the attention conformance drivers (forward and backward) as data:
// shapes, head grouping, the layout of q, k, v in memory, and a mask recipe.
#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "attn/mask.hpp"
#include "attn/rng.hpp"
#include "attn/tensor.hpp"
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

}  // namespace attn::test
