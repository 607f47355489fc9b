// `attn demo`: the worked example of each of the five tutorials (documents 000..004),
// computed with attn and printed the way the tutorials print them: the shape at
// every stage, small results as torch prints tensors.
//
// Random inputs come from attn::Rng, so the numbers differ from the tutorials'
// torch draws; `--json` records every input, parameter and output, and
// tests/python/test_demo_parity.py recomputes each example from those numbers
// with the tutorials' own code in float64.
//
// Every attention it computes is also drawn as a heatmap of its weights
// (demo_pictures.hpp), d2l's examples in d2l's "Reds", the others in viridis, and
// document 000's network is drawn with the shape on every edge (plot::network).
#include "demo.hpp"

#include <algorithm>
#include <cmath>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "attn/attn.hpp"
#include "demo_json.hpp"
#include "demo_pictures.hpp"

namespace attn::tools {
namespace {

using json = nlohmann::ordered_json;
using plot::Colormap;

// ---- printing ----------------------------------------------------------------------

// Also starts the document's section of pictures.
void heading(DemoPictures& pictures, std::string_view document, std::string_view title) {
  pictures.document(document, title);
  const std::string line = fmt::format("Document {}: {}", document, title);
  fmt::print("\n{}\n{}\n", line, std::string(line.size(), '='));
}

void section(std::string_view title) { fmt::print("\n-- {}\n", title); }

// One stage of a walk-through: its name and shape, as the documents print X.shape.
void stage(std::string_view label, const Tensor& t) {
  fmt::print("  {:<46} {}\n", label, t.shape_string());
}

// A stage that is a view: its strides show how it reads the storage.
void stage_view(std::string_view label, const Tensor& t) {
  fmt::print("  {:<46} {:<16} strides {}\n", label, t.shape_string(), shape_str(t.strides()));
}

void show(std::string_view label, const Tensor& t) { fmt::print("{}\n{}\n", label, to_string(t)); }

void note(std::string_view text) { fmt::print("  note: {}\n", text); }

// ---- small tensor helpers ------------------------------------------------------------

double max_abs_difference(const Tensor& a, const Tensor& b) {
  const std::vector<float> x = a.to_vector(), y = b.to_vector();
  double worst = 0;
  for (std::size_t i = 0; i < x.size(); ++i)
    worst = std::max(worst, std::fabs(static_cast<double>(x[i]) - static_cast<double>(y[i])));
  return worst;
}

// The tutorial's additive form of a 0/1 mask: mask * -1e9 (1 = blocked).
constexpr float kTutorialMaskValue = -1e9f;

Tensor times(const Tensor& t, float factor) {
  Tensor out = t.clone();
  out.for_each([factor](float& x) { x *= factor; });
  return out;
}

// (B, S) padding mask of the tutorial: 1 at key positions j >= length[b].
Tensor padding_mask(const std::vector<std::int64_t>& lengths, std::int64_t keys) {
  const auto batch = static_cast<std::int64_t>(lengths.size());
  Tensor mask = Tensor::zeros({batch, keys});
  for (std::int64_t b = 0; b < batch; ++b)
    for (std::int64_t j = lengths[static_cast<std::size_t>(b)]; j < keys; ++j) mask(b, j) = 1;
  return mask;
}

// (L, L) look-ahead mask of the tutorial: 1 above the diagonal (future keys).
Tensor look_ahead_mask(std::int64_t length) {
  Tensor mask = Tensor::zeros({length, length});
  for (std::int64_t i = 0; i < length; ++i)
    for (std::int64_t j = i + 1; j < length; ++j) mask(i, j) = 1;
  return mask;
}

json index_list(const IndexTensor& t) { return json(t.to_vector()); }

// ---- document 000 ----------------------------------------------------------------------

// d2l's MultiHeadAttention(num_hiddens=100, num_heads=5), bias=False, step by step:
// the projections, transpose_qkv as a view, masked softmax with valid_lens, and
// transpose_output as attention written straight into the concatenated buffer.
void document_000(Rng& rng, DemoRecord& record, DemoPictures& pictures) {
  heading(pictures, "000",
          "multi-head attention, d2l.ai style (transpose_qkv, masked_softmax, "
          "transpose_output)");
  constexpr std::int64_t B = 2, Lq = 4, Lk = 6, E = 100, H = 5, D = E / H;
  const Tensor queries = Tensor::randn({B, Lq, E}, rng);  // d2l's X
  const Tensor keys = Tensor::randn({B, Lk, E}, rng);     // d2l's Y: keys and values
  const IndexTensor valid_lens = IndexTensor::from({B}, {3, 2});

  MultiHeadAttention attention({.embed_dim = E,
                                .num_heads = H,
                                .dropout = 0.5,
                                .bias = false,  // d2l's default
                                .batch_first = true,
                                .seed = rng.next_u64()});
  attention.eval();
  // d2l's W_q, W_k, W_v are the three blocks of in_proj_weight; W_o is out_proj.
  const Tensor W_q = attention.in_proj_weight.slice(0, 0, E);
  const Tensor W_k = attention.in_proj_weight.slice(0, E, 2 * E);
  const Tensor W_v = attention.in_proj_weight.slice(0, 2 * E, 3 * E);

  fmt::print("MultiHeadAttention(num_hiddens={}, num_heads={}, dropout=0.5, bias=False), eval()\n",
             E, H);
  fmt::print("queries X {}, keys = values Y {}, valid_lens = {}\n", queries.shape_string(),
             keys.shape_string(), to_string(valid_lens));
  // The network the document draws by hand, with the shapes `attn explain` prints.
  pictures.add_picture(
      "doc000_d2l_multi_head_attention-network",
      "the network of MultiHeadAttention(num_hiddens=100, num_heads=5) for batch_size=2, "
      "num_queries=4, num_kvpairs=6, with the tensor shape on every edge",
      plot::network(multi_head_walkthrough(
          {.embed_dim = E, .num_heads = H, .batch = B, .queries = Lq, .keys = Lk})));

  section("transpose_qkv(W_q(X), num_heads)");
  const Tensor q = linear(queries, W_q);  // (B, Lq, E)
  stage("X", queries);
  stage("W_q(X)", q);
  const Tensor q_split = q.reshape({B, Lq, H, D});  // (B, Lq, H, D)
  stage_view(fmt::format("reshape(B, L, num_heads, {})", D), q_split);
  const Tensor q_heads = q_split.permute({0, 2, 1, 3});  // (B, H, Lq, D)
  stage_view("permute(0, 2, 1, 3)", q_heads);
  note(fmt::format("a view, not a copy: it reads W_q(X)'s storage ({})",
                   q_heads.data() == q.data() ? "same first element" : "different storage"));
  note(
      fmt::format("d2l then flattens it to (B*num_heads, L, {}) = ({}, {}, {}), which copies; "
                  "attn takes the (B, H, L, D) view as it is",
                  D, B * H, Lq, D));
  const Tensor k_heads = linear(keys, W_k).reshape({B, Lk, H, D}).permute({0, 2, 1, 3});
  const Tensor v_heads = linear(keys, W_v).reshape({B, Lk, H, D}).permute({0, 2, 1, 3});
  stage_view("W_k(Y), W_v(Y) as heads", k_heads);

  section("attention: masked_softmax(Q K^T / sqrt(20), valid_lens) V");
  // transpose_output is free: the heads are written into the (B, Lq, E) buffer
  // through a (B, H, Lq, D) view of it.
  Tensor concat = Tensor::empty({B, Lq, E});
  const Tensor concat_heads = concat.reshape({B, Lq, H, D}).permute({0, 2, 1, 3});
  const AttentionResult heads = scaled_dot_product_attention_into(
      q_heads, k_heads, v_heads, concat_heads,
      {.mask = Mask::lengths(valid_lens), .need_weights = true, .fill = MaskFill::d2l});
  stage("attention weights (B, H, Lq, Lk)", heads.weights);
  stage_view("attention output (B, H, Lq, 20)", heads.out);
  stage("transpose_output: concat (B, Lq, num_hiddens)", concat);
  const Tensor output = linear(concat, attention.out_proj_weight);  // (B, Lq, E)
  stage("W_o(concat): output", output);
  pictures.add("doc000_d2l_multi_head_attention-weights",
               "d2l MultiHeadAttention(num_hiddens=100, num_heads=5), step by step: "
               "masked_softmax(Q K^T / sqrt(20), valid_lens = [3, 2]), (B, H, Lq, Lk)",
               heads.weights, Colormap::reds);
  show("attention weights of batch 0, head 0 (valid_lens[0] = 3 keys kept):",
       heads.weights.select(0, 0).select(0, 0));
  show("attention weights of batch 1, head 0 (valid_lens[1] = 2 keys kept):",
       heads.weights.select(0, 1).select(0, 0));

  section("the same through attn::MultiHeadAttention::forward");
  const MultiHeadResult module = attention.forward(
      queries, keys, keys,
      {.average_attn_weights = false, .valid_lens = valid_lens, .fill = MaskFill::d2l});
  stage("attention(X, Y, Y, valid_lens)", module.output);
  pictures.add("doc000_d2l_multi_head_attention-module_weights",
               "the same through attn::MultiHeadAttention::forward with valid_lens = [3, 2], "
               "(B, H, Lq, Lk)",
               module.weights, Colormap::reds);
  fmt::print("  max |module - stages| = {:.3g}\n", max_abs_difference(module.output, output));

  record.begin("doc000_d2l_multi_head_attention", "000",
               "d2l MultiHeadAttention(num_hiddens=100, num_heads=5, bias=False)");
  record.config("num_hiddens", E);
  record.config("num_heads", H);
  record.config("bias", false);
  record.config("dropout", 0.5);
  record.config("valid_lens", index_list(valid_lens));
  record.config("masked_value", -1e6);
  record.tensor("queries", queries);
  record.tensor("keys", keys);
  record.tensor("values", keys);
  record.parameters(attention.named_parameters());
  record.tensor("projected_queries", q);
  record.tensor("attention_weights", heads.weights);
  record.tensor("attention_output", heads.out);
  record.tensor("concat", concat);
  record.tensor("output", output);
  record.tensor("module_output", module.output);
  record.tensor("module_weights", module.weights);
}

// ---- document 001 ----------------------------------------------------------------------

// Unscaled dot-product attention with keys = values = x2.
void document_001(Rng& rng, DemoRecord& record, DemoPictures& pictures) {
  heading(pictures, "001", "dot-product attention (bmm, softmax, bmm; unscaled)");
  const Tensor x1 = Tensor::randn({2, 3, 4}, rng);  // (batch_size, seq_len1, feature_dim)
  const Tensor x2 = Tensor::randn({2, 5, 4}, rng);  // (batch_size, seq_len2, feature_dim)
  show("x1:", x1);
  show("x2:", x2);

  // torch.bmm(x1, x2.transpose(1, 2)): per batch, linear(x1[b], x2[b]) = x1[b] x2[b]^T.
  Tensor raw_weights = Tensor::empty({2, 3, 5});
  for (std::int64_t b = 0; b < 2; ++b)
    raw_weights.select(0, b).copy_from(linear(x1.select(0, b), x2.select(0, b)));
  show("raw weights bmm(x1, x2^T) (batch_size, seq_len1, seq_len2):", raw_weights);

  const AttentionResult result = dot_product_attention(x1, x2, x2, {.need_weights = true});
  show("attention weights softmax(raw, dim=-1), each row sums to 1:", result.weights);
  show("attention output bmm(weights, x2) (batch_size, seq_len1, feature_dim):", result.out);
  pictures.add("doc001_dot_product-weights",
               "bmm(x1, x2^T) -> softmax(dim=-1), unscaled, (batch_size, seq_len1, seq_len2)",
               result.weights, Colormap::viridis);
  note("unscaled as in the document; attn::scaled_dot_product_attention divides by sqrt(d_k) = 2");

  record.begin("doc001_dot_product", "001", "bmm(x1, x2^T) -> softmax -> bmm(weights, x2)");
  record.config("scaled", false);
  record.tensor("x1", x1);
  record.tensor("x2", x2);
  record.tensor("raw_weights", raw_weights);
  record.tensor("attention_weights", result.weights);
  record.tensor("output", result.out);
}

// ---- document 002 ----------------------------------------------------------------------

// One use of the tutorial's MultiHeadAttention(d_model, num_heads), with its masks
// given as `mask * -1e9` and the per-head weights printed.
struct TutorialUse {
  std::string name, title;
  Tensor query, key_value;
  Tensor padding;     // (B, S) 0/1 or undefined
  Tensor look_ahead;  // (L, L) 0/1 or undefined
};

MultiHeadResult tutorial_attention(const TutorialUse& use, std::int64_t d_model,
                                   std::int64_t num_heads, Rng& rng, DemoRecord& record,
                                   DemoPictures& pictures) {
  MultiHeadAttention attention({.embed_dim = d_model,
                                .num_heads = num_heads,
                                .bias = true,  // nn.Linear(d_model, d_model): wq, wk, wv, dense
                                .batch_first = true,
                                .seed = rng.next_u64()});

  MultiHeadForwardOptions forward;
  forward.average_attn_weights = false;
  if (use.padding.defined()) forward.key_padding_mask = times(use.padding, kTutorialMaskValue);
  if (use.look_ahead.defined()) forward.attn_mask = times(use.look_ahead, kTutorialMaskValue);
  const MultiHeadResult result =
      attention.forward(use.query, use.key_value, use.key_value, forward);

  section(use.title);
  stage("q", use.query);
  stage("k = v", use.key_value);
  if (use.padding.defined()) stage("padding mask * -1e9 as key_padding_mask", use.padding);
  if (use.look_ahead.defined()) stage("look-ahead mask * -1e9 as attn_mask", use.look_ahead);
  stage("attention weights (B, num_heads, L, S)", result.weights);
  stage("dense(concat): output (B, L, d_model)", result.output);
  pictures.add(use.name + "-weights", use.title + ", (B, num_heads, L, S)", result.weights,
               Colormap::viridis);
  const std::int64_t last = use.query.size(0) - 1;
  show(fmt::format("weights of batch {}, head 0:", last),
       result.weights.select(0, last).select(0, 0));

  record.begin(use.name, "002", use.title);
  record.config("d_model", d_model);
  record.config("num_heads", num_heads);
  record.config("masked_value", static_cast<double>(kTutorialMaskValue));
  record.tensor("query", use.query);
  record.tensor("key", use.key_value);
  record.tensor("value", use.key_value);
  if (use.padding.defined()) record.tensor("padding_mask", use.padding);
  if (use.look_ahead.defined()) record.tensor("look_ahead_mask", use.look_ahead);
  record.parameters(attention.named_parameters());
  record.tensor("output", result.output);
  record.tensor("attention_weights", result.weights);
  return result;
}

void document_002(Rng& rng, DemoRecord& record, DemoPictures& pictures) {
  heading(pictures, "002", "multi-head self-attention in the Transformer (masks as mask * -1e9)");
  constexpr std::int64_t d_model = 32, num_heads = 4, B = 2, S = 6, T = 5;
  const std::vector<std::int64_t> source_lengths = {6, 4};
  fmt::print("MultiHeadAttention(d_model={}, num_heads={}): depth = d_model / num_heads = {}\n",
             d_model, num_heads, d_model / num_heads);
  fmt::print("biased wq, wk, wv, dense; a mask adds mask * -1e9 to the scores (1 = blocked)\n");

  const Tensor source = Tensor::randn({B, S, d_model}, rng);  // encoder input
  const Tensor target = Tensor::randn({B, T, d_model}, rng);  // decoder input
  const Tensor source_padding = padding_mask(source_lengths, S);
  const Tensor look_ahead = look_ahead_mask(T);
  show("padding mask of the source (lengths 6, 4):", source_padding);
  show("look-ahead mask of the target:", look_ahead);

  const MultiHeadResult encoded =
      tutorial_attention({"doc002_encoder_self_attention", "encoder self-attention (padding mask)",
                          source, source, source_padding, Tensor{}},
                         d_model, num_heads, rng, record, pictures);
  const MultiHeadResult decoded = tutorial_attention(
      {"doc002_decoder_masked_self_attention", "decoder masked self-attention (look-ahead mask)",
       target, target, Tensor{}, look_ahead},
      d_model, num_heads, rng, record, pictures);
  tutorial_attention({"doc002_encoder_decoder_attention",
                      "encoder-decoder attention (queries from the decoder, keys and values "
                      "from the encoder)",
                      decoded.output, encoded.output, source_padding, Tensor{}},
                     d_model, num_heads, rng, record, pictures);
}

// ---- document 003 ----------------------------------------------------------------------

// The numpy example: column vectors, x (d, n), A = K^T Q / sqrt(d), softmax down
// each column, output = V A_hat. attn reads each (d, n) column matrix as (1, n, d)
// rows through transposed strides, and writes the output the same way.
void document_003_numpy(Rng& rng, DemoRecord& record, DemoPictures& pictures) {
  section("numpy, column vectors: d = 256, n = 32");
  constexpr std::int64_t d = 256, n = 32;
  const Tensor x = Tensor::randn({d, n}, rng);
  const Tensor w_q = Tensor::randn({d, d}, rng);
  const Tensor w_k = Tensor::randn({d, d}, rng);
  const Tensor w_v = Tensor::randn({d, d}, rng);
  // q = w_q @ x: linear(a, b) = a b^T, so w_q (x^T)^T with x^T a view.
  const Tensor q = linear(w_q, x.transpose(0, 1));  // (d, n)
  const Tensor k = linear(w_k, x.transpose(0, 1));  // (d, n)
  const Tensor v = linear(w_v, x.transpose(0, 1));  // (d, n)
  stage("x", x);
  stage("q = w_q @ x (k, v alike)", q);

  // Column j of a (d, n) matrix is row j of its transpose: (1, n, d), no copy.
  const auto rows = [](const Tensor& columns) { return columns.transpose(0, 1).unsqueeze(0); };
  Tensor output = Tensor::empty({d, n});
  // The default scale 1 / sqrt(d) is the document's A /= np.sqrt(d).
  const AttentionResult result = scaled_dot_product_attention_into(
      rows(q), rows(k), rows(v), rows(output), {.need_weights = true});
  stage_view("q.transpose(0, 1).unsqueeze(0) (1, n, d)", rows(q));
  // The weights are (1, n_queries, n_keys); A_hat is (n_keys, n_queries).
  const Tensor A_hat = result.weights.select(0, 0).transpose(0, 1);
  stage_view("A_hat = softmax(k.T @ q / sqrt(d), axis=0)", A_hat);
  pictures.add("doc003_numpy_columns-weights",
               "numpy, column vectors: A_hat = softmax(k.T @ q / sqrt(d), axis=0) drawn "
               "transposed, (1, n queries, n keys)",
               result.weights, Colormap::viridis);
  stage_view("output = v @ A_hat, written through (1, n, d)", output);
  fmt::print("  output.shape == (256, 32): {}\n", output.shape() == Shape{d, n} ? "yes" : "NO");
  float column_sum = 0;
  for (std::int64_t i = 0; i < n; ++i) column_sum += A_hat(i, 0);
  fmt::print("  A_hat[:, 0].sum() = {:.4f}\n", column_sum);

  record.begin("doc003_numpy_columns", "003", "numpy self-attention with column vectors");
  record.config("d", d);
  record.config("n", n);
  record.tensor("x", x);
  record.tensor("w_q", w_q);
  record.tensor("w_k", w_k);
  record.tensor("w_v", w_v);
  record.tensor("q", q);
  record.tensor("A_hat", A_hat);
  record.tensor("output", output);
}

// Self_Attention(input_dim=2, dim_k=4, dim_v=5) on X = randn(4, 3, 2).
void document_003_module(Rng& rng, DemoRecord& record, DemoPictures& pictures) {
  section("PyTorch module Self_Attention(input_dim=2, dim_k=4, dim_v=5)");
  const Tensor X = Tensor::randn({4, 3, 2}, rng);
  MultiHeadAttention self_attention({.embed_dim = 2,  // input_dim
                                     .num_heads = 1,
                                     .bias = true,
                                     .kdim = 2,
                                     .vdim = 2,
                                     .batch_first = true,
                                     .qdim = 2,
                                     .qk_proj_dim = 4,  // dim_k
                                     .v_proj_dim = 5,   // dim_v
                                     .out_proj = false,
                                     .seed = rng.next_u64()});
  const MultiHeadResult result = self_attention.forward(X, X, X);
  show("X = randn(4, 3, 2):", X);
  show("res = self_attention(X):", result.output);
  stage("res.shape", result.output);
  pictures.add("doc003_self_attention_module-weights",
               "Self_Attention(input_dim=2, dim_k=4, dim_v=5) on X = randn(4, 3, 2), "
               "(batch, 3, 3)",
               result.weights, Colormap::viridis);
  note(
      "the document multiplies by 1/sqrt(dim_k) after the softmax, "
      "softmax(Q K^T) / sqrt(dim_k) V, which is a bug; attn computes "
      "softmax(Q K^T / sqrt(dim_k)) V");

  record.begin("doc003_self_attention_module", "003", "Self_Attention(2, 4, 5)");
  record.config("input_dim", 2);
  record.config("dim_k", 4);
  record.config("dim_v", 5);
  record.tensor("X", X);
  record.parameters(self_attention.named_parameters());
  record.tensor("output", result.output);
  record.tensor("attention_weights", result.weights);
}

void document_003(Rng& rng, DemoRecord& record, DemoPictures& pictures) {
  heading(pictures, "003", "self-attention by hand: numpy columns and a PyTorch module");
  document_003_numpy(rng, record, pictures);
  document_003_module(rng, record, pictures);
}

// ---- document 004 ----------------------------------------------------------------------

void document_004(Rng& rng, DemoRecord& record, DemoPictures& pictures) {
  heading(pictures, "004", "attention scoring functions (masked_softmax, additive, scaled dot-product)");

  section("masked_softmax(torch.rand(2, 2, 4), valid_lens), masked scores set to -1e6");
  const Tensor scores_1d = Tensor::rand({2, 2, 4}, rng);
  const IndexTensor lens_1d = IndexTensor::from({2}, {2, 3});
  const Tensor softmax_1d = masked_softmax(scores_1d, lens_1d, MaskFill::d2l);
  show("masked_softmax(rand(2, 2, 4), tensor([2, 3])):", softmax_1d);
  const Tensor scores_2d = Tensor::rand({2, 2, 4}, rng);
  const IndexTensor lens_2d = IndexTensor::from({2, 2}, {1, 3, 2, 4});
  const Tensor softmax_2d = masked_softmax(scores_2d, lens_2d, MaskFill::d2l);
  show("masked_softmax(rand(2, 2, 4), tensor([[1, 3], [2, 4]])):", softmax_2d);

  record.begin("doc004_masked_softmax_1d", "004", "masked_softmax with 1-D valid_lens");
  record.config("valid_lens", index_list(lens_1d));
  record.config("masked_value", -1e6);
  record.tensor("X", scores_1d);
  record.tensor("output", softmax_1d);
  record.begin("doc004_masked_softmax_2d", "004", "masked_softmax with 2-D valid_lens");
  record.config("valid_lens", json::array({json(std::vector<std::int64_t>{1, 3}),
                                           json(std::vector<std::int64_t>{2, 4})}));
  record.config("masked_value", -1e6);
  record.tensor("X", scores_2d);
  record.tensor("output", softmax_2d);

  // Shared by both scoring functions: ten identical keys, so every kept key gets
  // the same weight and the output is the mean of the first valid_lens values.
  const Tensor keys = Tensor::full({2, 10, 2}, 1.0f);
  const Tensor values = Tensor::arange(40).reshape({1, 10, 4}).expand({2, 10, 4});
  const IndexTensor valid_lens = IndexTensor::from({2}, {2, 6});

  section("AdditiveAttention(key_size=2, query_size=20, num_hiddens=8, dropout=0.1), eval()");
  const Tensor additive_queries = Tensor::randn({2, 1, 20}, rng);  // normal(0, 1, (2, 1, 20))
  AdditiveAttention additive(2, 20, 8, 0.1, rng);
  additive.eval();
  const Tensor additive_out = additive.forward(additive_queries, keys, values, valid_lens);
  stage("queries", additive_queries);
  stage("keys = ones(2, 10, 2)", keys);
  stage_view("values = arange(40).reshape(1, 10, 4) expanded", values);
  show("attention(queries, keys, values, valid_lens=[2, 6]):", additive_out);
  show("attention.attention_weights:", additive.attention_weights);
  pictures.add("doc004_additive_attention-weights",
               "AdditiveAttention(key_size=2, query_size=20, num_hiddens=8), valid_lens = [2, 6], "
               "(2, 1, 10)",
               additive.attention_weights, Colormap::reds);

  record.begin("doc004_additive_attention", "004",
               "AdditiveAttention(key_size=2, query_size=20, num_hiddens=8, dropout=0.1)");
  record.config("valid_lens", index_list(valid_lens));
  record.config("dropout", 0.1);
  record.config("masked_value", -1e6);
  record.tensor("queries", additive_queries);
  record.tensor("keys", keys);
  record.tensor("values", values);
  record.parameters(additive.named_parameters());
  record.tensor("output", additive_out);
  record.tensor("attention_weights", additive.attention_weights);

  section("DotProductAttention(dropout=0.5), eval()");
  const Tensor dot_queries = Tensor::randn({2, 1, 2}, rng);  // normal(0, 1, (2, 1, 2))
  DotProductAttention dot(0.5, /*scaled=*/true, rng.next_u64());
  dot.eval();
  const Tensor dot_out = dot.forward(dot_queries, keys, values, valid_lens);
  stage("queries", dot_queries);
  show("attention(queries, keys, values, valid_lens=[2, 6]):", dot_out);
  show("attention.attention_weights:", dot.attention_weights);
  pictures.add("doc004_dot_product_attention-weights",
               "DotProductAttention(dropout=0.5), valid_lens = [2, 6], (2, 1, 10)",
               dot.attention_weights, Colormap::reds);

  record.begin("doc004_dot_product_attention", "004", "DotProductAttention(dropout=0.5)");
  record.config("valid_lens", index_list(valid_lens));
  record.config("dropout", 0.5);
  record.config("masked_value", -1e6);
  record.tensor("queries", dot_queries);
  record.tensor("keys", keys);
  record.tensor("values", values);
  record.tensor("output", dot_out);
  record.tensor("attention_weights", dot.attention_weights);
}

}  // namespace

int run_demo(const DemoOptions& options) {
  DemoRecord record(options.seed);
  DemoPictures pictures(options.out_dir);  // before any work: a bad folder fails at once
  fmt::print("attn demo: the worked example of each tutorial (seed {})\n", options.seed);
  // One stream for the whole walk-through, as torch.manual_seed(seed) at the top
  // of a script: inputs and parameters are drawn in the order they appear.
  Rng rng(options.seed);
  document_000(rng, record, pictures);
  document_001(rng, record, pictures);
  document_002(rng, record, pictures);
  document_003(rng, record, pictures);
  document_004(rng, record, pictures);
  if (!options.json_path.empty()) {
    record.write(options.json_path);
    fmt::print("\nwrote {}\n", options.json_path);
  }
  fmt::print("\npictures: {}\n", pictures.write_index());
  return 0;
}

}  // namespace attn::tools
