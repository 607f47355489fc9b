// multi_head_walkthrough: the stages of MultiHeadAttention::forward and their shapes,
// from the sizes alone. Each shape is the one forward() gives the same tensor; the
// layout follows the module: projections run in the inputs' own layout, the head
// split is a (B, H, L, E/H) view, the heads write into the concatenated buffer.
#include <fmt/format.h>

#include <limits>

#include "attn/explain.hpp"
#include "ops/check.hpp"

namespace attn {
namespace {

constexpr std::string_view kOp = "multi_head_walkthrough";

void check_positive(std::string_view name, std::int64_t value) {
  if (value < 1) detail::fail(kOp, fmt::format("{} must be positive, got {}", name, value));
}

// The element count, or nullopt past INT64_MAX.
std::optional<std::int64_t> checked_numel(const Shape& shape) {
  std::int64_t n = 1;
  for (const std::int64_t d : shape)
    if (__builtin_mul_overflow(n, d, &n)) return std::nullopt;
  return n;
}

}  // namespace

MultiHeadWalkthrough multi_head_walkthrough(const MultiHeadSizes& sizes) {
  MultiHeadWalkthrough w;
  w.sizes = sizes;
  MultiHeadSizes& s = w.sizes;
  s.kdim = sizes.kdim.value_or(sizes.embed_dim);
  s.vdim = sizes.vdim.value_or(sizes.embed_dim);
  // The order and wording of MultiHeadAttention's constructor, then the input sizes.
  check_positive("embed_dim", s.embed_dim);
  check_positive("num_heads", s.num_heads);
  check_positive("kdim", *s.kdim);
  check_positive("vdim", *s.vdim);
  check_positive("batch", s.batch);
  check_positive("queries", s.queries);
  check_positive("keys", s.keys);
  if (s.embed_dim % s.num_heads != 0)
    detail::fail(kOp, fmt::format("num_heads {} must divide embed_dim {} (the head dim would be "
                                  "{} / {})",
                                  s.num_heads, s.embed_dim, s.embed_dim, s.num_heads));

  const std::int64_t E = s.embed_dim, H = s.num_heads, B = s.batch, Lq = s.queries, Lk = s.keys;
  const std::int64_t D = E / H, kdim = *s.kdim, vdim = *s.vdim;
  w.head_dim = D;
  // torch packs W_q, W_k, W_v into one in_proj_weight when every input width is E.
  const bool packed = kdim == E && vdim == E;
  const bool bf = s.batch_first;
  // (B, L, X) or, sequence-first, (L, B, X): the layout of inputs, projections and output.
  const auto seq = [bf, B](std::int64_t len, std::int64_t width) {
    return bf ? Shape{B, len, width} : Shape{len, B, width};
  };
  const auto seq_letters = [bf](std::string_view len, std::string_view width) {
    return bf ? fmt::format("(B, {}, {})", len, width) : fmt::format("({}, B, {})", len, width);
  };
  const auto torch_name = [packed, E](const char* separate, int block) {
    return packed ? fmt::format("in_proj_weight[{}:{}]", block * E, (block + 1) * E)
                  : std::string(separate);
  };
  const std::string d2l_split = [&] {
    std::int64_t bh = 0;
    return __builtin_mul_overflow(B, H, &bh) ? std::string("B*H") : fmt::format("{}", bh);
  }();

  auto& st = w.stages;
  st.push_back({.step = Step::query, .name = "query", .operation = "query",
                .shape = seq(Lq, E), .letters = seq_letters("Lq", "E")});
  st.push_back({.step = Step::key, .name = "key", .operation = "key",
                .shape = seq(Lk, kdim), .letters = seq_letters("Lk", "kdim")});
  st.push_back({.step = Step::value, .name = "value", .operation = "value",
                .shape = seq(Lk, vdim), .letters = seq_letters("Lk", "vdim")});
  st.push_back({.step = Step::project_q, .name = "W_q", .operation = "W_q(query) = query W_q^T",
                .shape = seq(Lq, E), .letters = seq_letters("Lq", "E"), .weight_name = "W_q",
                .weight = {E, E}, .weight_letters = "(E, E)",
                .torch_name = torch_name("q_proj_weight", 0)});
  st.push_back({.step = Step::project_k, .name = "W_k", .operation = "W_k(key) = key W_k^T",
                .shape = seq(Lk, E), .letters = seq_letters("Lk", "E"), .weight_name = "W_k",
                .weight = {E, kdim}, .weight_letters = "(E, kdim)",
                .torch_name = torch_name("k_proj_weight", 1)});
  st.push_back({.step = Step::project_v, .name = "W_v", .operation = "W_v(value) = value W_v^T",
                .shape = seq(Lk, E), .letters = seq_letters("Lk", "E"), .weight_name = "W_v",
                .weight = {E, vdim}, .weight_letters = "(E, vdim)",
                .torch_name = torch_name("v_proj_weight", 2)});
  const auto split = [&](Step step, const char* of, std::int64_t len, const char* len_letters) {
    st.push_back(
        {.step = step, .name = "split heads",
         .operation = fmt::format("split {} into {} head{} of {}", of, H, H == 1 ? "" : "s", D),
         .shape = {B, H, len, D}, .letters = fmt::format("(B, H, {}, E/H)", len_letters),
         .note = fmt::format("a view, no copy; d2l's transpose_qkv copies it to "
                             "(B*H, {}, E/H) = ({}, {}, {})",
                             len_letters, d2l_split, len, D)});
  };
  split(Step::split_q, "W_q(query)", Lq, "Lq");
  split(Step::split_k, "W_k(key)", Lk, "Lk");
  split(Step::split_v, "W_v(value)", Lk, "Lk");
  st.push_back({.step = Step::scores, .name = "scores",
                .operation = fmt::format("scores Q K^T / sqrt({}), per head", D),
                .shape = {B, H, Lq, Lk}, .letters = "(B, H, Lq, Lk)"});
  st.push_back({.step = Step::softmax, .name = "softmax",
                .operation = "attention weights softmax(scores) over the keys",
                .shape = {B, H, Lq, Lk}, .letters = "(B, H, Lq, Lk)"});
  st.push_back({.step = Step::weighted_sum, .name = "weights V", .operation = "weights V, per head",
                .shape = {B, H, Lq, D}, .letters = "(B, H, Lq, E/H)"});
  st.push_back({.step = Step::concat, .name = "concat",
                .operation = "concat heads (d2l's transpose_output)", .shape = seq(Lq, E),
                .letters = seq_letters("Lq", "E"),
                .note = "free: the heads write into this buffer through a view"});
  st.push_back({.step = Step::project_out, .name = "W_o",
                .operation = "W_o(concat) = concat W_o^T: output", .shape = seq(Lq, E),
                .letters = seq_letters("Lq", "E"), .weight_name = "W_o", .weight = {E, E},
                .weight_letters = "(E, E)", .torch_name = "out_proj.weight"});
  st.push_back({.step = Step::average_weights, .name = "mean over heads",
                .operation = "attention weights averaged over the heads (returned)",
                .shape = {B, Lq, Lk}, .letters = "(B, Lq, Lk)"});

  const auto too_large = [&](const std::string& what, const std::string& letters,
                             const Shape& shape) {
    detail::fail(
        kOp, fmt::format("{}: {} = {} would hold more than {} elements; embed_dim {}, "
                         "num_heads {}, kdim {}, vdim {}, batch {}, queries {}, keys {}",
                         what, letters, shape_str(shape), std::numeric_limits<std::int64_t>::max(),
                         E, H, kdim, vdim, B, Lq, Lk));
  };
  for (const Stage& stage : st) {
    if (!checked_numel(stage.shape)) too_large(stage.operation, stage.letters, stage.shape);
    if (!checked_numel(stage.weight))
      too_large(stage.weight_name, stage.weight_letters, stage.weight);
  }
  return w;
}

}  // namespace attn
