// attn::multi_head_walkthrough: every stage's shape against what MultiHeadAttention
// and the ops really produce for the same sizes, the terminal text, and the errors.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "attn/explain.hpp"
#include "attn/modules.hpp"
#include "attn/ops.hpp"
#include "attn/rng.hpp"
#include "attn/tensor.hpp"
#include "test_util.hpp"

using attn::MultiHeadAttention;
using attn::MultiHeadSizes;
using attn::MultiHeadWalkthrough;
using attn::Shape;
using attn::Stage;
using attn::Step;
using attn::Tensor;
using attn::test::error_of;
using attn::test::HasSubstrs;
using ::testing::HasSubstr;

namespace {

// Document 000's example, then the awkward ones: kdim != vdim != E, B = 1, Lq != Lk,
// one query and one key, one head, as many heads as E, and torch's (L, B, E) layout.
const MultiHeadSizes kSizeSets[] = {
    {.embed_dim = 100, .num_heads = 5, .batch = 2, .queries = 4, .keys = 6},
    {.embed_dim = 12, .num_heads = 3, .batch = 1, .queries = 5, .keys = 2, .kdim = 7, .vdim = 9},
    {.embed_dim = 8, .num_heads = 8, .batch = 3, .queries = 1, .keys = 1},
    {.embed_dim = 6,
     .num_heads = 1,
     .batch = 2,
     .queries = 3,
     .keys = 4,
     .vdim = 5,
     .batch_first = false},
    {.embed_dim = 16,
     .num_heads = 4,
     .batch = 2,
     .queries = 3,
     .keys = 7,
     .kdim = 3,
     .batch_first = false},
    {.embed_dim = 9, .num_heads = 3, .batch = 1, .queries = 1, .keys = 5, .kdim = 9, .vdim = 9},
};

std::string trace(const MultiHeadSizes& s) {
  std::ostringstream out;
  out << "E=" << s.embed_dim << " H=" << s.num_heads << " B=" << s.batch << " Lq=" << s.queries
      << " Lk=" << s.keys << " kdim=" << s.kdim.value_or(-1) << " vdim=" << s.vdim.value_or(-1)
      << " batch_first=" << s.batch_first;
  return out.str();
}

MultiHeadAttention module_for(const MultiHeadSizes& s, bool out_proj = true) {
  MultiHeadAttention m({.embed_dim = s.embed_dim,
                        .num_heads = s.num_heads,
                        .kdim = s.kdim,
                        .vdim = s.vdim,
                        .batch_first = s.batch_first,
                        .out_proj = out_proj,
                        .seed = 17});
  m.eval();
  return m;
}

std::map<std::string, Shape> parameter_shapes(const MultiHeadAttention& m) {
  std::map<std::string, Shape> shapes;
  for (const auto& [name, t] : m.named_parameters()) shapes[name] = t.shape();
  return shapes;
}

// The lines of `text` between the line `header` and the next empty line.
std::vector<std::string> section(const std::string& text, const std::string& header) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  bool inside = false;
  for (std::string line; std::getline(in, line);) {
    if (inside && line.empty()) break;
    if (inside) lines.push_back(line);
    if (line.rfind(header, 0) == 0) inside = true;
  }
  return lines;
}

}  // namespace

TEST(MultiHeadWalkthrough, StagesComeInTheOrderOfStep) {
  const MultiHeadWalkthrough w = attn::multi_head_walkthrough(kSizeSets[0]);
  ASSERT_EQ(w.stages.size(), static_cast<std::size_t>(Step::average_weights) + 1);
  for (std::size_t i = 0; i < w.stages.size(); ++i)
    EXPECT_EQ(static_cast<std::size_t>(w.stages[i].step), i);
  EXPECT_EQ(w.head_dim, 20);
  EXPECT_EQ(w.sizes.kdim, 100);  // filled in from embed_dim
  EXPECT_EQ(w.sizes.vdim, 100);
  // Document 000's prints, stage by stage.
  EXPECT_EQ(w.at(Step::query).shape, (Shape{2, 4, 100}));
  EXPECT_EQ(w.at(Step::key).shape, (Shape{2, 6, 100}));
  EXPECT_EQ(w.at(Step::project_q).shape, (Shape{2, 4, 100}));
  EXPECT_EQ(w.at(Step::split_q).shape, (Shape{2, 5, 4, 20}));
  EXPECT_EQ(w.at(Step::split_k).shape, (Shape{2, 5, 6, 20}));
  EXPECT_EQ(w.at(Step::scores).shape, (Shape{2, 5, 4, 6}));
  EXPECT_EQ(w.at(Step::weighted_sum).shape, (Shape{2, 5, 4, 20}));
  EXPECT_EQ(w.at(Step::concat).shape, (Shape{2, 4, 100}));
  EXPECT_EQ(w.at(Step::average_weights).shape, (Shape{2, 4, 6}));
  EXPECT_EQ(w.at(Step::split_q).letters, "(B, H, Lq, E/H)");
  // d2l's transpose_qkv result, (B*H, L, E/H), is named beside attn's view.
  EXPECT_THAT(w.at(Step::split_q).note, HasSubstrs({"view", "(B*H, Lq, E/H) = (10, 4, 20)"}));
  EXPECT_THAT(w.at(Step::split_k).note, HasSubstr("(10, 6, 20)"));
}

TEST(MultiHeadWalkthrough, ShapesAreWhatTheModuleComputes) {
  for (const MultiHeadSizes& s : kSizeSets) {
    SCOPED_TRACE(trace(s));
    const MultiHeadWalkthrough w = attn::multi_head_walkthrough(s);
    attn::Rng rng(5);
    const Tensor query = Tensor::randn(w.at(Step::query).shape, rng);
    const Tensor key = Tensor::randn(w.at(Step::key).shape, rng);
    const Tensor value = Tensor::randn(w.at(Step::value).shape, rng);

    // The module's output and weights, averaged and per head.
    MultiHeadAttention mha = module_for(s);
    const attn::MultiHeadResult averaged = mha.forward(query, key, value);
    EXPECT_EQ(averaged.output.shape(), w.at(Step::project_out).shape);
    EXPECT_EQ(averaged.weights.shape(), w.at(Step::average_weights).shape);
    const attn::MultiHeadResult per_head =
        mha.forward(query, key, value, {.average_attn_weights = false});
    EXPECT_EQ(per_head.weights.shape(), w.at(Step::softmax).shape);
    EXPECT_EQ(per_head.weights.shape(), w.at(Step::scores).shape);
    // Without the output projection the module returns the concatenated heads.
    MultiHeadAttention no_out = module_for(s, /*out_proj=*/false);
    EXPECT_EQ(no_out.forward(query, key, value).output.shape(), w.at(Step::concat).shape);

    // The parameters, by the names named_parameters() gives them.
    const std::map<std::string, Shape> params = parameter_shapes(mha);
    ASSERT_TRUE(params.count("out_proj.weight"));
    EXPECT_EQ(params.at("out_proj.weight"), w.at(Step::project_out).weight);
    EXPECT_EQ(w.at(Step::project_out).torch_name, "out_proj.weight");
    std::map<Step, Tensor> weight_of;
    std::int64_t packed_rows = 0;
    for (const Step step : {Step::project_q, Step::project_k, Step::project_v}) {
      const Stage& st = w.at(step);
      if (mha.packed_in_proj()) {
        long long begin = -1, end = -1;
        ASSERT_EQ(std::sscanf(st.torch_name.c_str(), "in_proj_weight[%lld:%lld]", &begin, &end), 2)
            << st.torch_name;
        EXPECT_EQ(begin, packed_rows) << st.torch_name;
        weight_of[step] = mha.in_proj_weight.slice(0, begin, end);
        packed_rows = end;
      } else {
        ASSERT_TRUE(params.count(st.torch_name)) << st.torch_name;
        weight_of[step] = st.torch_name == "q_proj_weight"   ? mha.q_proj_weight
                          : st.torch_name == "k_proj_weight" ? mha.k_proj_weight
                                                             : mha.v_proj_weight;
      }
      EXPECT_EQ(weight_of[step].shape(), st.weight) << st.weight_name;
    }
    if (mha.packed_in_proj()) {
      EXPECT_EQ(params.at("in_proj_weight"), (Shape{packed_rows, s.embed_dim}));
    }
    EXPECT_EQ(mha.packed_in_proj(), !params.count("q_proj_weight"));

    // The stages in between, computed as the module computes them: the projection
    // with its weight, the batch-major view split into heads, attention per head.
    const auto batch_major = [&s](const Tensor& t) {
      return s.batch_first ? t : t.transpose(0, 1);
    };
    const auto heads = [&s](const Tensor& t) {
      return t.reshape({t.size(0), t.size(1), s.num_heads, t.size(2) / s.num_heads})
          .permute({0, 2, 1, 3});
    };
    const Tensor q = attn::linear(query, weight_of[Step::project_q]);
    const Tensor k = attn::linear(key, weight_of[Step::project_k]);
    const Tensor v = attn::linear(value, weight_of[Step::project_v]);
    EXPECT_EQ(q.shape(), w.at(Step::project_q).shape);
    EXPECT_EQ(k.shape(), w.at(Step::project_k).shape);
    EXPECT_EQ(v.shape(), w.at(Step::project_v).shape);
    const Tensor qh = heads(batch_major(q)), kh = heads(batch_major(k)), vh = heads(batch_major(v));
    EXPECT_EQ(qh.shape(), w.at(Step::split_q).shape);
    EXPECT_EQ(kh.shape(), w.at(Step::split_k).shape);
    EXPECT_EQ(vh.shape(), w.at(Step::split_v).shape);
    // A view: the split reads the projection's storage.
    EXPECT_EQ(qh.data(), q.data());
    const attn::AttentionResult r =
        attn::scaled_dot_product_attention(qh, kh, vh, {.need_weights = true});
    EXPECT_EQ(r.weights.shape(), w.at(Step::softmax).shape);
    EXPECT_EQ(r.out.shape(), w.at(Step::weighted_sum).shape);
  }
}

TEST(MultiHeadWalkthrough, TextHasOneLinePerStageWithItsShape) {
  const MultiHeadWalkthrough w = attn::multi_head_walkthrough(kSizeSets[0]);
  const std::string text = attn::walkthrough_text(w);
  EXPECT_THAT(text,
              HasSubstrs({"MultiHeadAttention(embed_dim=100, num_heads=5, kdim=100, vdim=100",
                          "batch 2, 4 queries, 6 key-value pairs", "head dim E/H = 100 / 5 = 20"}));

  const std::vector<std::string> stages = section(text, "stages:");
  ASSERT_EQ(stages.size(), w.stages.size()) << text;
  for (std::size_t i = 0; i < stages.size(); ++i) {
    const Stage& st = w.stages[i];
    EXPECT_THAT(stages[i], HasSubstrs({"  " + st.operation, st.letters, attn::shape_str(st.shape)}))
        << "stage " << i;
  }
  EXPECT_THAT(stages[static_cast<int>(Step::split_q)],
              HasSubstrs({"split W_q(query) into 5 heads of 20", "(B, H, Lq, E/H)", "(2, 5, 4, 20)",
                          "view", "(10, 4, 20)"}));
  EXPECT_THAT(stages[static_cast<int>(Step::scores)],
              HasSubstrs({"Q K^T / sqrt(20)", "(B, H, Lq, Lk)", "(2, 5, 4, 6)"}));
  EXPECT_THAT(stages[static_cast<int>(Step::concat)],
              HasSubstrs({"transpose_output", "(2, 4, 100)"}));
  EXPECT_THAT(stages.back(), HasSubstrs({"averaged over the heads", "(B, Lq, Lk)", "(2, 4, 6)"}));

  const std::vector<std::string> params = section(text, "parameters");
  ASSERT_EQ(params.size(), 5u) << text;  // W_q, W_k, W_v, W_o and the bias line
  EXPECT_THAT(params[0], HasSubstrs({"W_q", "(E, E)", "(100, 100)", "in_proj_weight[0:100]"}));
  EXPECT_THAT(params[1], HasSubstrs({"W_k", "(E, kdim)", "(100, 100)", "in_proj_weight[100:200]"}));
  EXPECT_THAT(params[2], HasSubstrs({"W_v", "(E, vdim)", "(100, 100)", "in_proj_weight[200:300]"}));
  EXPECT_THAT(params[3], HasSubstrs({"W_o", "(E, E)", "(100, 100)", "out_proj.weight"}));

  // Separate widths: separate weights; sequence-first inputs.
  const std::string other = attn::walkthrough_text(attn::multi_head_walkthrough(kSizeSets[4]));
  EXPECT_THAT(other, HasSubstrs({"kdim=3", "batch_first=False", "(E, kdim)  (16, 3)",
                                 "k_proj_weight", "(Lq, B, E)", "(3, 2, 16)", "(B, H, Lk, E/H)",
                                 "(2, 4, 7, 4)", "(8, 7, 4)"}));
  EXPECT_THAT(other, ::testing::Not(HasSubstr("in_proj_weight")));
}

TEST(MultiHeadWalkthrough, ErrorsNameTheArgumentAndValue) {
  const auto with = [](auto change) {
    MultiHeadSizes s = kSizeSets[0];
    change(s);
    return error_of([&] { attn::multi_head_walkthrough(s); });
  };
  EXPECT_THAT(with([](MultiHeadSizes& s) { s.embed_dim = 0; }),
              HasSubstrs({"[multi_head_walkthrough]", "embed_dim must be positive, got 0"}));
  EXPECT_THAT(with([](MultiHeadSizes& s) { s.num_heads = -2; }),
              HasSubstr("num_heads must be positive, got -2"));
  EXPECT_THAT(with([](MultiHeadSizes& s) { s.batch = 0; }),
              HasSubstr("batch must be positive, got 0"));
  EXPECT_THAT(with([](MultiHeadSizes& s) { s.queries = 0; }),
              HasSubstr("queries must be positive, got 0"));
  EXPECT_THAT(with([](MultiHeadSizes& s) { s.keys = -1; }),
              HasSubstr("keys must be positive, got -1"));
  EXPECT_THAT(with([](MultiHeadSizes& s) { s.kdim = 0; }),
              HasSubstr("kdim must be positive, got 0"));
  EXPECT_THAT(with([](MultiHeadSizes& s) { s.vdim = -7; }),
              HasSubstr("vdim must be positive, got -7"));
  EXPECT_THAT(with([](MultiHeadSizes& s) {
                s.embed_dim = 10;
                s.num_heads = 3;
              }),
              HasSubstrs({"[multi_head_walkthrough]", "num_heads 3 must divide embed_dim 10"}));
  // More elements than int64 holds: here only the scores (B, H, Lq, Lk) = 6 Lq.
  EXPECT_THAT(with([](MultiHeadSizes& s) {
                s.embed_dim = 1;
                s.num_heads = 1;
                s.queries = std::numeric_limits<std::int64_t>::max() / 4;
                s.keys = 3;
              }),
              HasSubstrs({"scores", "(B, H, Lq, Lk)", "more than 9223372036854775807 elements"}));

  // The module refuses the same sizes: the walk-through never explains a
  // configuration MultiHeadAttention cannot be built with.
  for (const auto& [E, H] : {std::pair<std::int64_t, std::int64_t>{10, 3}, {0, 1}, {4, 0}}) {
    SCOPED_TRACE(std::to_string(E) + " / " + std::to_string(H));
    EXPECT_THAT(error_of([&] { attn::multi_head_walkthrough({.embed_dim = E, .num_heads = H}); }),
                HasSubstr(E <= 0 ? "embed_dim" : "num_heads"));
    EXPECT_THAT(error_of([&] { MultiHeadAttention({.embed_dim = E, .num_heads = H}); }),
                HasSubstr(E <= 0 ? "embed_dim" : "num_heads"));
  }
}
