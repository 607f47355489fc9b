// The shape walk-through of one MultiHeadAttention forward: every stage from the
// inputs to the output, with the tensor shape after it, computed from the sizes
// alone (nothing is allocated). It is what document 000 prints step by step, as a
// value that a terminal (`walkthrough_text`) and a picture (`plot::network`) show:
//
//   const attn::MultiHeadWalkthrough w = attn::multi_head_walkthrough(
//       {.embed_dim = 100, .num_heads = 5, .batch = 2, .queries = 4, .keys = 6});
//   w.at(attn::Step::split_q).shape;  // (2, 5, 4, 20)
//   fmt::print("{}", attn::walkthrough_text(w));
//
// The stages follow MultiHeadAttention::forward, and tests/test_explain.cpp holds
// them to the shapes the module really produces.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "attn/tensor.hpp"

namespace attn {

// The sizes of one forward. kdim and vdim default to embed_dim, as in
// nn.MultiheadAttention; projections and the output have embed_dim columns.
struct MultiHeadSizes {
  std::int64_t embed_dim = 0;          // E
  std::int64_t num_heads = 1;          // H; must divide E
  std::int64_t batch = 1;              // B
  std::int64_t queries = 1;            // Lq
  std::int64_t keys = 1;               // Lk, the key-value pairs
  std::optional<std::int64_t> kdim{};  // key input width, default E
  std::optional<std::int64_t> vdim{};  // value input width, default E
  // d2l's batch-major (B, L, E) inputs and output; false is torch's default (L, B, E).
  bool batch_first = true;
};

// The stages in the order the forward runs them.
enum class Step {
  query,            // the inputs
  key,
  value,
  project_q,        // W_q, W_k, W_v
  project_k,
  project_v,
  split_q,          // (B, L, E) -> (B, H, L, E/H), views
  split_k,
  split_v,
  scores,           // Q K^T / sqrt(E/H) per head
  softmax,          // over the keys
  weighted_sum,     // weights V per head
  concat,           // the heads side by side again
  project_out,      // W_o: the output
  average_weights,  // the returned weights, the mean over heads
};

struct Stage {
  Step step = Step::query;
  std::string name{};       // short, for a box or an edge: "W_q", "split heads"
  std::string operation{};  // what it computes: "W_q(query) = query W_q^T"
  Shape shape{};            // the tensor after the stage
  std::string letters{};    // the same shape in letters: "(B, H, Lq, E/H)"
  std::string note{};       // e.g. that a split is a view; empty for most stages
  // Projections only: the weight as nn.Linear keeps it, (out, in); empty otherwise.
  std::string weight_name{};     // "W_q"
  Shape weight{};                // (100, 100)
  std::string weight_letters{};  // "(E, E)"
  // Where MultiHeadAttention::named_parameters() holds it: "in_proj_weight[0:100]"
  // (rows 0..99 of the packed weight), "q_proj_weight" or "out_proj.weight".
  std::string torch_name{};
};

struct MultiHeadWalkthrough {
  MultiHeadSizes sizes;       // as given, with kdim and vdim filled in
  std::int64_t head_dim = 0;  // E / H
  std::vector<Stage> stages;  // one per Step, in the order of Step

  const Stage& at(Step step) const { return stages[static_cast<std::size_t>(step)]; }
};

// Throws attn::Error naming the argument and its value when a size is < 1, when
// num_heads does not divide embed_dim, or when a tensor of the forward would hold
// more than INT64_MAX elements.
MultiHeadWalkthrough multi_head_walkthrough(const MultiHeadSizes& sizes);

// The walk-through for a terminal, one line per stage (its operation, the shape in
// letters and in numbers), after one line per parameter shape.
std::string walkthrough_text(const MultiHeadWalkthrough& walkthrough);

}  // namespace attn
