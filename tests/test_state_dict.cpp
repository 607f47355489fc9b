// attn::io state dicts: the names of nn.MultiheadAttention (as torch 1.13's
// state_dict() lists them) and of the tutorials' modules, each a view of the module's
// storage; loading by name, through safetensors files too; every error with its
// message, and a failed load that changes nothing.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <bit>
#include <string>
#include <vector>

#include "attn/modules.hpp"
#include "attn/safetensors.hpp"
#include "attn/state_dict.hpp"
#include "test_util.hpp"

using attn::MultiHeadAttention;
using attn::MultiHeadAttentionOptions;
using attn::Shape;
using attn::Tensor;
using attn::io::load_state_dict;
using attn::io::Names;
using attn::io::NamedTensors;
using attn::io::state_dict;
using attn::test::error_of;
using attn::test::HasSubstrs;
using attn::test::names_of;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

namespace {

using Strings = std::vector<std::string>;

std::vector<Shape> shapes_of(const NamedTensors& tensors) {
  std::vector<Shape> shapes;
  for (const auto& [name, t] : tensors) shapes.push_back(t.shape());
  return shapes;
}

// Copies of the tensors (a state_dict holds views of the module).
NamedTensors cloned(const NamedTensors& tensors) {
  NamedTensors out;
  for (const auto& [name, t] : tensors) out.emplace_back(name, t.clone());
  return out;
}

// Every parameter of `a` equals the one of `b` bit for bit.
void expect_same_parameters(const MultiHeadAttention& a, const MultiHeadAttention& b) {
  const NamedTensors pa = a.named_parameters(), pb = b.named_parameters();
  ASSERT_EQ(names_of(pa), names_of(pb));
  for (std::size_t i = 0; i < pa.size(); ++i) EXPECT_EQ(pa[i].second.to_vector(), pb[i].second.to_vector()) << pa[i].first;
}

// An (L, B, E) or (B, L, E) forward of `m` on inputs seeded with `seed`.
Tensor forward(MultiHeadAttention& m, std::uint64_t seed) {
  const MultiHeadAttentionOptions& o = m.options();
  const auto in = [&](std::int64_t width, std::uint64_t s) {
    return attn::test::randn({3, 2, width}, s);
  };
  m.eval();
  return m.forward(in(o.qdim.value_or(o.embed_dim), seed), in(o.kdim.value_or(o.embed_dim), seed + 1),
                   in(o.vdim.value_or(o.embed_dim), seed + 2))
      .output;
}

// ---- names -------------------------------------------------------------------------------------

TEST(StateDict, TorchNamesInTorchsOrder) {
  // torch.nn.MultiheadAttention(8, 2, ...).state_dict() in torch 1.13.
  const auto names = [](MultiHeadAttentionOptions o) {
    o.embed_dim = 8;
    o.num_heads = 2;
    return names_of(state_dict(MultiHeadAttention(o)));
  };
  EXPECT_EQ(names({}), (Strings{"in_proj_weight", "in_proj_bias", "out_proj.weight", "out_proj.bias"}));
  EXPECT_EQ(names({.bias = false}), (Strings{"in_proj_weight", "out_proj.weight"}));
  EXPECT_EQ(names({.add_bias_kv = true}), (Strings{"in_proj_weight", "in_proj_bias", "bias_k", "bias_v",
                                                   "out_proj.weight", "out_proj.bias"}));
  EXPECT_EQ(names({.kdim = 5, .vdim = 3}),
            (Strings{"q_proj_weight", "k_proj_weight", "v_proj_weight", "in_proj_bias",
                     "out_proj.weight", "out_proj.bias"}));
  EXPECT_EQ(shapes_of(state_dict(MultiHeadAttention({.embed_dim = 8, .num_heads = 2, .kdim = 5, .vdim = 3}))),
            (std::vector<Shape>{{8, 8}, {8, 5}, {8, 3}, {24}, {8, 8}, {8}}));
  const MultiHeadAttention m({.embed_dim = 8, .num_heads = 2});
  EXPECT_EQ(names_of(state_dict(m, Names::torch)), names_of(m.named_parameters()));
}

TEST(StateDict, D2lNames) {
  // d2l's MultiHeadAttention(key_size, query_size, value_size, num_hiddens, num_heads,
  // dropout, bias): W_q, W_k, W_v, W_o, registered in that order.
  const MultiHeadAttention packed({.embed_dim = 6, .num_heads = 3, .bias = false});
  const NamedTensors sd = state_dict(packed, Names::d2l);
  EXPECT_EQ(names_of(sd), (Strings{"W_q.weight", "W_k.weight", "W_v.weight", "W_o.weight"}));
  EXPECT_EQ(shapes_of(sd), (std::vector<Shape>{{6, 6}, {6, 6}, {6, 6}, {6, 6}}));
  EXPECT_EQ(names_of(state_dict(MultiHeadAttention({.embed_dim = 6, .num_heads = 3}), Names::d2l)),
            (Strings{"W_q.weight", "W_q.bias", "W_k.weight", "W_k.bias", "W_v.weight", "W_v.bias",
                     "W_o.weight", "W_o.bias"}));
  // query_size 4, key_size 5, value_size 3: the projections are separate tensors.
  const MultiHeadAttention widths({.embed_dim = 6, .num_heads = 3, .bias = false, .kdim = 5, .vdim = 3, .qdim = 4});
  EXPECT_EQ(shapes_of(state_dict(widths, Names::d2l)), (std::vector<Shape>{{6, 4}, {6, 5}, {6, 3}, {6, 6}}));
  EXPECT_EQ(state_dict(widths, Names::d2l)[1].second.data(), widths.k_proj_weight.data());
}

TEST(StateDict, TutorialAndSelfAttentionNames) {
  const MultiHeadAttention tutorial({.embed_dim = 8, .num_heads = 2, .batch_first = true});
  EXPECT_EQ(names_of(state_dict(tutorial, Names::transformer_tutorial)),
            (Strings{"wq.weight", "wq.bias", "wk.weight", "wk.bias", "wv.weight", "wv.bias",
                     "dense.weight", "dense.bias"}));
  // Self_Attention(input_dim=2, dim_k=4, dim_v=5): q, k, v = nn.Linear(2, 4), (2, 4), (2, 5).
  const MultiHeadAttention self({.embed_dim = 2, .num_heads = 1, .batch_first = true,
                                 .qk_proj_dim = 4, .v_proj_dim = 5, .out_proj = false});
  const NamedTensors sd = state_dict(self, Names::self_attention);
  EXPECT_EQ(names_of(sd), (Strings{"q.weight", "q.bias", "k.weight", "k.bias", "v.weight", "v.bias"}));
  EXPECT_EQ(shapes_of(sd), (std::vector<Shape>{{4, 2}, {4}, {4, 2}, {4}, {5, 2}, {5}}));
}

TEST(StateDict, NamesAreViewsOfTheModule) {
  const MultiHeadAttention m({.embed_dim = 4, .num_heads = 2, .seed = 3});
  const NamedTensors sd = state_dict(m, Names::d2l);
  // W_k is rows [4, 8) of in_proj_weight, W_v.bias entries [8, 12) of in_proj_bias.
  EXPECT_EQ(sd[2].first, "W_k.weight");
  EXPECT_EQ(sd[2].second.to_vector(), m.in_proj_weight.slice(0, 4, 8).to_vector());
  const float untouched = m.in_proj_weight(3, 3);
  sd[2].second.fill(7);
  sd[5].second.fill(-1);
  EXPECT_EQ(m.in_proj_weight(5, 3), 7);
  EXPECT_EQ(m.in_proj_weight(3, 3), untouched);
  EXPECT_EQ(m.in_proj_bias.slice(0, 8, 12).to_vector(), (std::vector<float>(4, -1)));
  EXPECT_EQ(m.in_proj_bias(7), 0);
}

TEST(StateDict, ConventionsWithoutANameRefuse) {
  const MultiHeadAttention bias_kv({.embed_dim = 4, .num_heads = 2, .add_bias_kv = true});
  EXPECT_THAT(error_of([&] { state_dict(bias_kv, Names::d2l); }),
              HasSubstrs({"[state_dict] MultiHeadAttention, d2l names: the module has bias_k and "
                          "bias_v (add_bias_kv), which d2l's MultiHeadAttention does not have; use "
                          "Names::torch"}));
  const MultiHeadAttention with_out({.embed_dim = 4, .num_heads = 1});
  EXPECT_THAT(error_of([&] { state_dict(with_out, Names::self_attention); }),
              HasSubstr("the module has an output projection, which Self_Attention does not have; "
                        "construct it with out_proj = false"));
  MultiHeadAttention no_out({.embed_dim = 4, .num_heads = 1, .out_proj = false});
  EXPECT_THAT(error_of([&] { state_dict(no_out, Names::transformer_tutorial); }),
              HasSubstr("the module has no output projection (out_proj = false), but the "
                        "Transformer tutorial's MultiHeadAttention has one (dense.weight)"));
  EXPECT_THAT(error_of([&] { load_state_dict(no_out, {}, {.names = Names::d2l}); }),
              HasSubstr("[state_dict]"));
}

// ---- loading ---------------------------------------------------------------------------------

TEST(LoadStateDict, EveryConventionRoundTrips) {
  struct Case {
    Names names;
    MultiHeadAttentionOptions options;
  };
  const std::vector<Case> cases = {
      {Names::torch, {.embed_dim = 8, .num_heads = 2}},
      {Names::torch, {.embed_dim = 8, .num_heads = 2, .bias = false, .add_bias_kv = true, .kdim = 5, .vdim = 3}},
      {Names::d2l, {.embed_dim = 6, .num_heads = 3, .bias = false, .kdim = 5, .vdim = 3, .qdim = 4}},
      {Names::d2l, {.embed_dim = 6, .num_heads = 3}},
      {Names::transformer_tutorial, {.embed_dim = 8, .num_heads = 4, .batch_first = true}},
      {Names::self_attention,
       {.embed_dim = 2, .num_heads = 1, .batch_first = true, .qk_proj_dim = 4, .v_proj_dim = 5, .out_proj = false}},
      {Names::self_attention, {.embed_dim = 3, .num_heads = 1, .out_proj = false}},
  };
  for (const Case& c : cases) {
    const std::string what(attn::io::names_str(c.names));
    MultiHeadAttentionOptions o1 = c.options, o2 = c.options;
    o1.seed = 1;
    o2.seed = 2;
    MultiHeadAttention trained(o1), fresh(o2);
    // Random biases too (they start at zero).
    std::uint64_t seed = 100;
    for (const auto& [name, t] : trained.named_parameters()) t.copy_from(attn::test::randn(t.shape(), seed++));

    const attn::io::LoadResult r = load_state_dict(fresh, cloned(state_dict(trained, c.names)), {.names = c.names});
    EXPECT_TRUE(r.missing_keys.empty() && r.unexpected_keys.empty()) << what;
    expect_same_parameters(fresh, trained);

    // Through a file: the same values, the same forward bit for bit.
    MultiHeadAttention from_file(o2);
    const std::string path = (attn::test::test_dir() / (what + ".safetensors")).string();
    attn::io::save_safetensors(path, state_dict(trained, c.names));
    load_state_dict(from_file, attn::io::load_safetensors(path).tensors, {.names = c.names});
    expect_same_parameters(from_file, trained);
    const std::vector<float> a = forward(from_file, 9).to_vector(), b = forward(trained, 9).to_vector();
    ASSERT_EQ(a.size(), b.size()) << what;
    for (std::size_t i = 0; i < a.size(); ++i)
      ASSERT_EQ(std::bit_cast<std::uint32_t>(a[i]), std::bit_cast<std::uint32_t>(b[i])) << what << i;
  }
}

TEST(LoadStateDict, TutorialProjectionsFillThePackedWeights) {
  // d2l's W_q, W_k, W_v are the row blocks of nn.MultiheadAttention's in_proj_weight.
  MultiHeadAttention m({.embed_dim = 2, .num_heads = 1});
  const Tensor q = Tensor::full({2, 2}, 1), k = Tensor::full({2, 2}, 2), v = Tensor::full({2, 2}, 3);
  load_state_dict(m,
                  {{"W_q.weight", q}, {"W_q.bias", Tensor::full({2}, -1)}, {"W_k.weight", k},
                   {"W_k.bias", Tensor::full({2}, -2)}, {"W_v.weight", v}, {"W_v.bias", Tensor::full({2}, -3)},
                   {"W_o.weight", Tensor::full({2, 2}, 4)}, {"W_o.bias", Tensor::full({2}, -4)}},
                  {.names = Names::d2l});
  EXPECT_EQ(m.in_proj_weight.to_vector(), (std::vector<float>{1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3}));
  EXPECT_EQ(m.in_proj_bias.to_vector(), (std::vector<float>{-1, -1, -2, -2, -3, -3}));
  EXPECT_EQ(m.out_proj_weight.to_vector(), (std::vector<float>(4, 4)));
  EXPECT_EQ(m.out_proj_bias.to_vector(), (std::vector<float>(2, -4)));
}

TEST(LoadStateDict, StrictErrorsListEveryProblemAndChangeNothing) {
  MultiHeadAttention m({.embed_dim = 8, .num_heads = 2, .seed = 5});
  const NamedTensors before = cloned(m.named_parameters());
  NamedTensors given = cloned(state_dict(MultiHeadAttention({.embed_dim = 8, .num_heads = 2, .seed = 6})));
  given.erase(given.begin() + 1);                                // in_proj_bias missing
  given.emplace_back("extra.weight", Tensor::zeros({3, 3}));     // unexpected
  given[0].second = Tensor::zeros({12, 4});                      // in_proj_weight of the wrong size
  EXPECT_THAT(error_of([&] { load_state_dict(m, given); }),
              HasSubstrs({"[load_state_dict] MultiHeadAttention, torch names: ",
                          "missing key(s): 'in_proj_bias' (24); ",
                          "unexpected key(s): 'extra.weight' (3, 3); ",
                          "size mismatch for 'in_proj_weight': the tensor is (12, 4), the module's "
                          "parameter is (24, 8)"}));
  const NamedTensors after = m.named_parameters();
  for (std::size_t i = 0; i < after.size(); ++i)
    EXPECT_EQ(after[i].second.to_vector(), before[i].second.to_vector()) << after[i].first;

  // A size mismatch is an error even when not strict (as in torch); an undefined tensor too.
  given[0].second = Tensor();
  EXPECT_THAT(error_of([&] { load_state_dict(m, given, {.strict = false}); }),
              AllOf(HasSubstr("size mismatch for 'in_proj_weight': the tensor is undefined"),
                    Not(HasSubstr("missing"))));
  // A name given twice.
  NamedTensors twice = cloned(state_dict(m));
  twice.push_back(twice[0]);
  EXPECT_THAT(error_of([&] { load_state_dict(m, twice); }),
              HasSubstr("given more than once: 'in_proj_weight'"));
}

TEST(LoadStateDict, NotStrictLoadsWhatMatches) {
  MultiHeadAttention m({.embed_dim = 4, .num_heads = 2});
  const Tensor old_bias = m.in_proj_bias.clone();
  const attn::io::LoadResult r =
      load_state_dict(m, {{"in_proj_weight", Tensor::full({12, 4}, 0.5f)}, {"bias_k", Tensor::zeros({1, 1, 4})}},
                      {.strict = false});
  EXPECT_THAT(r.missing_keys, ElementsAre("in_proj_bias", "out_proj.weight", "out_proj.bias"));
  EXPECT_THAT(r.unexpected_keys, ElementsAre("bias_k"));
  EXPECT_EQ(m.in_proj_weight.to_vector(), (std::vector<float>(48, 0.5f)));
  EXPECT_EQ(m.in_proj_bias.to_vector(), old_bias.to_vector());
}

TEST(LoadStateDict, HintsNameTheConventionTheTensorsFollow) {
  MultiHeadAttention m({.embed_dim = 4, .num_heads = 2});
  EXPECT_THAT(error_of([&] { load_state_dict(m, cloned(state_dict(m, Names::transformer_tutorial))); }),
              HasSubstrs({"missing key(s): 'in_proj_weight' (12, 4)", "unexpected key(s): 'wq.weight' (4, 4)",
                          "the tensors have the names of Names::transformer_tutorial: pass "
                          "{.names = attn::io::Names::transformer_tutorial}"}));
  EXPECT_THAT(error_of([&] { load_state_dict(m, cloned(state_dict(m)), {.names = Names::d2l}); }),
              HasSubstr("the tensors have the names of Names::torch"));
  // torch's separate projections given to a packed module: the widths differ.
  const MultiHeadAttention split({.embed_dim = 4, .num_heads = 2, .kdim = 3});
  EXPECT_THAT(error_of([&] { load_state_dict(m, cloned(state_dict(split))); }),
              HasSubstr("nn.MultiheadAttention packs q, k and v into in_proj_weight exactly when "
                        "kdim and vdim equal embed_dim"));
}

TEST(LoadStateDict, AdditiveAttentionAndLinear) {
  attn::Rng rng(1), other(2);
  attn::AdditiveAttention a(2, 20, 8, 0.1, rng), b(2, 20, 8, 0.1, other);
  EXPECT_EQ(names_of(state_dict(a)), (Strings{"W_q.weight", "W_k.weight", "w_v.weight"}));
  load_state_dict(b, cloned(state_dict(a)));
  EXPECT_EQ(b.W_q.weight.to_vector(), a.W_q.weight.to_vector());
  EXPECT_EQ(b.w_v.weight.to_vector(), a.w_v.weight.to_vector());
  EXPECT_THAT(error_of([&] { load_state_dict(b, {{"W_q.weight", Tensor::zeros({8, 20})}}); }),
              HasSubstrs({"[load_state_dict] AdditiveAttention: missing key(s): 'W_k.weight' (8, 2), "
                          "'w_v.weight' (1, 8)"}));

  attn::Linear l(3, 2, true, rng), k(3, 2, true, other);
  EXPECT_EQ(names_of(state_dict(l)), (Strings{"weight", "bias"}));
  load_state_dict(k, cloned(state_dict(l)));
  EXPECT_EQ(k.bias.to_vector(), l.bias.to_vector());
  EXPECT_THAT(error_of([&] { load_state_dict(k, {{"weight", Tensor::zeros({2, 3})}, {"bias", Tensor::zeros({3})}}); }),
              HasSubstr("[load_state_dict] Linear: size mismatch for 'bias': the tensor is (3), "
                        "the module's parameter is (2)"));
}

}  // namespace
