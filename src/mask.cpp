// Mask construction, combination and its check against the scores of a call.
#include <algorithm>
#include <cmath>

#include "attn/mask.hpp"
#include "mask_view.hpp"
#include "ops/check.hpp"

namespace attn {

namespace {
template <class T>
void append(std::vector<T>& to, const std::vector<T>& from) {
  to.insert(to.end(), from.begin(), from.end());
}
}  // namespace

Mask Mask::causal(Align align) {
  Mask m;
  m.causal_.push_back(align);
  return m;
}

Mask Mask::lengths(IndexTensor valid_lens) {
  Mask m;
  m.lengths_.push_back(std::move(valid_lens));
  return m;
}

Mask Mask::lengths(const std::vector<std::int64_t>& per_batch) {
  return lengths(IndexTensor::from({static_cast<std::int64_t>(per_batch.size())}, per_batch));
}

Mask Mask::sliding_window(std::int64_t left, std::int64_t right, Align align) {
  if (left < 0 || right < 0)
    detail::fail("Mask::sliding_window", "left and right must be >= 0, got left " +
                                             std::to_string(left) + ", right " +
                                             std::to_string(right));
  Mask m;
  m.windows_.push_back({left, right, align});
  return m;
}

Mask Mask::dense(BoolTensor mask, Polarity polarity) {
  Mask m;
  m.dense_.push_back({std::move(mask), polarity});
  return m;
}

Mask Mask::bias(Tensor additive) {
  Mask m;
  m.biases_.push_back(std::move(additive));
  return m;
}

Mask& Mask::operator&=(const Mask& other) {
  if (unmasked_trailing_keys_ != 0 && other.unmasked_trailing_keys_ != 0 &&
      unmasked_trailing_keys_ != other.unmasked_trailing_keys_)
    detail::fail("Mask", "cannot combine masks with " + std::to_string(unmasked_trailing_keys_) +
                             " and " + std::to_string(other.unmasked_trailing_keys_) +
                             " appended unmasked keys");
  unmasked_trailing_keys_ = std::max(unmasked_trailing_keys_, other.unmasked_trailing_keys_);
  append(causal_, other.causal_);
  append(lengths_, other.lengths_);
  append(windows_, other.windows_);
  append(dense_, other.dense_);
  append(biases_, other.biases_);
  return *this;
}

Mask Mask::append_unmasked_keys(std::int64_t n) const {
  if (n < 0) detail::fail("Mask::append_unmasked_keys", "n must be >= 0, got " + std::to_string(n));
  Mask m = *this;
  m.unmasked_trailing_keys_ = n;
  return m;
}

Mask Mask::operator&(const Mask& other) const {
  Mask m = *this;
  m &= other;
  return m;
}

namespace detail {
namespace {

template <class T>
Strides4 broadcast_strides(std::string_view op, std::string_view what, const BasicTensor<T>& t,
                           const Shape& scores) {
  if (t.rank() > 4)
    fail(op, std::string(what) + " " + t.shape_string() +
                 " has more dims than the scores (B, H, Lq, Lk) = " + shape_str(scores));
  BasicTensor<T> view;
  try {
    view = t.expand(scores);
  } catch (const Error&) {
    fail(op, std::string(what) + " " + t.shape_string() +
                 " does not broadcast to the scores (B, H, Lq, Lk) = " + shape_str(scores));
  }
  return Strides4::of(view);
}

}  // namespace

MaskView resolve_mask(std::string_view op, const Mask& mask, std::int64_t batch,
                      std::int64_t heads, std::int64_t queries, std::int64_t all_keys) {
  const std::int64_t appended = mask.unmasked_trailing_keys();
  if (appended > all_keys)
    fail(op, "mask appends " + std::to_string(appended) + " unmasked keys to scores with only " +
                 std::to_string(all_keys) + " keys");
  // The terms speak of the keys before the appended ones.
  const std::int64_t keys = all_keys - appended;
  MaskView view;
  view.queries = queries;
  view.keys = keys;
  view.source = mask;
  const Shape scores = {batch, heads, queries, keys};

  view.causal = mask.causal_terms();
  view.windows = mask.window_terms();

  for (const IndexTensor& lens : mask.length_terms()) {
    const bool per_batch = lens.rank() == 1 && lens.size(0) == batch;
    const bool per_query = lens.rank() == 2 && lens.size(0) == batch && lens.size(1) == queries;
    if (!per_batch && !per_query)
      fail(op, "valid_lens " + lens.shape_string() + " must be (B) = (" + std::to_string(batch) +
                   ") or (B, Lq) = (" + std::to_string(batch) + ", " + std::to_string(queries) +
                   ") for scores (B, H, Lq, Lk) = " + shape_str(scores));
    lens.for_each([&](std::int64_t len) {
      if (len < 0 || len > keys)
        fail(op, "valid_lens " + lens.shape_string() + " holds " + std::to_string(len) +
                     ", outside [0, Lk] = [0, " + std::to_string(keys) + "]");
    });
    view.lengths.push_back(
        {lens.data(), lens.stride(0), per_query ? lens.stride(1) : std::int64_t{0}});
  }
  for (const DenseTerm& d : mask.dense_terms())
    view.dense.push_back({d.mask.data(), broadcast_strides(op, "mask", d.mask, scores),
                          d.polarity == Polarity::keep});
  for (const Tensor& b : mask.bias_terms())
    view.biases.push_back({b.data(), broadcast_strides(op, "bias", b, scores)});
  return view;
}

}  // namespace detail

BoolTensor materialize(const Mask& mask, std::int64_t batch, std::int64_t heads,
                       std::int64_t queries, std::int64_t keys) {
  const detail::MaskView view = detail::resolve_mask("materialize", mask, batch, heads, queries, keys);
  BoolTensor out = BoolTensor::zeros({batch, heads, queries, keys});
  for (std::int64_t b = 0; b < batch; ++b)
    for (std::int64_t h = 0; h < heads; ++h)
      for (std::int64_t i = 0; i < queries; ++i)
        for (std::int64_t j = 0; j < keys; ++j)
          out(b, h, i, j) = view.allowed(b, h, i, j) && view.bias(b, h, i, j) != -INFINITY;
  return out;
}

}  // namespace attn
