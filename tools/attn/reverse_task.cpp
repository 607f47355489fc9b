// The reverse task's data, model, loss and its backward: the model's own parts
// (embeddings, their gradients, cross-entropy) here, the attention and the
// read-out through attn's modules and their explicit backward.
#include "reverse_task.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

namespace attn::tools {
namespace {

Tensor normal_table(std::int64_t rows, std::int64_t cols, Rng& rng) { return Tensor::randn({rows, cols}, rng); }

MultiHeadAttentionOptions attention_options(const ReverseTaskSizes& sizes, std::uint64_t seed) {
  MultiHeadAttentionOptions o;
  o.embed_dim = sizes.width;
  o.num_heads = sizes.heads;
  o.batch_first = true;
  o.seed = seed;
  return o;
}

}  // namespace

ReverseBatch reverse_batch(std::int64_t batch, const ReverseTaskSizes& sizes, Rng& rng) {
  const std::int64_t L = sizes.length;
  ReverseBatch out{IndexTensor::zeros({batch, L}), IndexTensor::zeros({batch, L})};
  std::int64_t* x = out.tokens.data();
  std::int64_t* y = out.targets.data();
  for (std::int64_t b = 0; b < batch; ++b) {
    for (std::int64_t i = 0; i < L; ++i)
      x[b * L + i] = std::min(static_cast<std::int64_t>(rng.uniform() * static_cast<double>(sizes.vocab)),
                              sizes.vocab - 1);
    for (std::int64_t i = 0; i < L; ++i) y[b * L + i] = x[b * L + (L - 1 - i)];
  }
  return out;
}

ReverseModel::ReverseModel(const ReverseTaskSizes& sizes, std::uint64_t seed)
    : sizes_(sizes),
      attention_(attention_options(sizes, seed)),
      readout_([&] {
        Rng rng(seed + 1);
        return Linear(sizes.width, sizes.vocab, true, rng);
      }()) {
  Rng rng(seed + 2);
  token_embedding_ = normal_table(sizes.vocab, sizes.width, rng);
  input_position_ = normal_table(sizes.length, sizes.width, rng);
  output_position_ = normal_table(sizes.length, sizes.width, rng);
}

ReverseModel::Output ReverseModel::forward(const IndexTensor& tokens) {
  const std::int64_t B = tokens.size(0), L = sizes_.length, E = sizes_.width;
  Tensor keys = Tensor::zeros({B, L, E}), queries = Tensor::zeros({B, L, E});
  const std::vector<std::int64_t> x = tokens.to_vector();
  const float* tok = token_embedding_.data();
  const float* pin = input_position_.data();
  const float* pout = output_position_.data();
  float* k = keys.data();
  float* q = queries.data();
  for (std::int64_t b = 0; b < B; ++b)
    for (std::int64_t i = 0; i < L; ++i)
      for (std::int64_t e = 0; e < E; ++e) {
        k[(b * L + i) * E + e] = tok[x[static_cast<std::size_t>(b * L + i)] * E + e] + pin[i * E + e];
        q[(b * L + i) * E + e] = pout[i * E + e];
      }
  saved_tokens_ = tokens;
  MultiHeadForwardOptions options;
  options.need_weights = true;
  MultiHeadResult r = attention_.forward(queries, keys, keys, options);
  return {readout_.forward(r.output), r.weights};
}

NamedParameters ReverseModel::backward(const Tensor& dlogits) {
  const std::int64_t L = sizes_.length, E = sizes_.width;
  const LinearModuleGrads readout = readout_.backward(dlogits);
  const AttentionModuleGrads attention = attention_.backward(readout.input);

  // The embeddings' gradients: forward was k[b, i] = tok[x[b, i]] + pin[i] and
  // q[b, i] = pout[i], so tok and pin collect dk + dv (keys and values are one
  // tensor), and pout the queries' gradient, summed over the batch.
  Tensor dtok = Tensor::zeros(token_embedding_.shape()), dpin = Tensor::zeros(input_position_.shape()),
         dpout = Tensor::zeros(output_position_.shape());
  const std::vector<float> dq = attention.query.to_vector(), dk = attention.key.to_vector(),
                           dv = attention.value.to_vector();
  const std::vector<std::int64_t> x = saved_tokens_.to_vector();
  const std::int64_t B = saved_tokens_.size(0);
  for (std::int64_t b = 0; b < B; ++b)
    for (std::int64_t i = 0; i < L; ++i)
      for (std::int64_t e = 0; e < E; ++e) {
        const auto at = static_cast<std::size_t>((b * L + i) * E + e);
        const float dkv = dk[at] + dv[at];
        dtok.data()[x[static_cast<std::size_t>(b * L + i)] * E + e] += dkv;
        dpin.data()[i * E + e] += dkv;
        dpout.data()[i * E + e] += dq[at];
      }

  NamedParameters grads = {{"token_embedding", dtok}, {"input_position", dpin}, {"output_position", dpout}};
  for (const auto& [name, g] : attention.params) grads.emplace_back("attention." + name, g);
  for (const auto& [name, g] : readout.params) grads.emplace_back("readout." + name, g);
  return grads;
}

NamedParameters ReverseModel::named_parameters() const {
  NamedParameters params = {{"token_embedding", token_embedding_},
                            {"input_position", input_position_},
                            {"output_position", output_position_}};
  for (const auto& [name, p] : attention_.named_parameters()) params.emplace_back("attention." + name, p);
  for (const auto& [name, p] : readout_.named_parameters("readout.")) params.emplace_back(name, p);
  return params;
}

CrossEntropy cross_entropy(const Tensor& logits, const IndexTensor& targets) {
  const std::int64_t V = logits.size(-1);
  const std::int64_t rows = logits.numel() / std::max<std::int64_t>(V, 1);
  const std::vector<float> z = logits.to_vector();
  const std::vector<std::int64_t> t = targets.to_vector();
  CrossEntropy out{0, 0, Tensor::zeros(logits.shape())};
  float* d = out.dlogits.data();
  std::int64_t right = 0;
  for (std::int64_t r = 0; r < rows; ++r) {
    const float* row = z.data() + r * V;
    const std::int64_t best = std::max_element(row, row + V) - row;
    const double m = row[best];
    double sum = 0;
    for (std::int64_t v = 0; v < V; ++v) sum += std::exp(row[v] - m);
    const std::int64_t target = t[static_cast<std::size_t>(r)];
    out.loss += std::log(sum) - (row[target] - m);  // -log softmax(z)[target]
    right += best == target;
    // d/dz of the mean loss: (softmax(z) - onehot(target)) / rows.
    for (std::int64_t v = 0; v < V; ++v)
      d[r * V + v] = static_cast<float>((std::exp(row[v] - m) / sum - (v == target ? 1.0 : 0.0)) /
                                        static_cast<double>(rows));
  }
  out.loss /= static_cast<double>(rows);
  out.accuracy = static_cast<double>(right) / static_cast<double>(rows);
  return out;
}

double mirrored_fraction(const Tensor& weights) {
  const std::int64_t B = weights.size(0), L = weights.size(1), S = weights.size(2);
  const std::vector<float> w = weights.to_vector();
  std::int64_t mirrored = 0;
  for (std::int64_t b = 0; b < B; ++b)
    for (std::int64_t i = 0; i < L; ++i) {
      const float* row = w.data() + (b * L + i) * S;
      mirrored += std::max_element(row, row + S) - row == L - 1 - i;
    }
  return static_cast<double>(mirrored) / static_cast<double>(B * L);
}

}  // namespace attn::tools
