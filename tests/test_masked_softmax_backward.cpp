// attn::masked_softmax_backward against central differences of a long-double
// masked softmax: valid lengths 1-D and 2-D, both fills, empty rows, strides, errors.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

#include "attn/backward.hpp"
#include "attn/ops.hpp"
#include "grad_check.hpp"
#include "oracle.hpp"
#include "test_util.hpp"

using attn::IndexTensor;
using attn::MaskFill;
using attn::Shape;
using attn::Tensor;
using attn::test::central_differences;
using attn::test::error_of;
using attn::test::HasSubstrs;
using attn::test::LTensor;
using attn::test::randn;

namespace {

// Which entries of x's rows d2l's rule keeps: row r of a leading index uses that
// index's length (1-D valid_lens) or its own (valid_lens of x's shape less the last dim).
std::vector<bool> kept_entries(const Shape& shape, const std::optional<IndexTensor>& lens) {
  const std::int64_t cols = shape.back(), rows = attn::shape_numel(shape) / cols;
  const std::vector<std::int64_t> len = lens ? lens->to_vector() : std::vector<std::int64_t>{};
  const bool per_row = lens && static_cast<std::int64_t>(len.size()) == rows;
  std::vector<bool> kept;
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t c = 0; c < cols; ++c)
      kept.push_back(!lens || c < len[static_cast<std::size_t>(per_row ? r : r / (rows / shape[0]))]);
  return kept;
}

// dx of masked_softmax at x, given dy, against central differences; returns dx.
Tensor check(const Tensor& x, const Tensor& dy, const std::optional<IndexTensor>& lens, MaskFill fill,
             const std::string& label) {
  const Tensor y = attn::masked_softmax(x, lens, fill);
  const Tensor dx = attn::masked_softmax_backward(y, dy, lens, fill);
  const std::int64_t cols = x.size(-1);
  const std::vector<bool> kept = kept_entries(x.shape(), lens);
  const LTensor xL = attn::test::widen(x);
  const auto forward = [&] {
    std::vector<long double> out, s(static_cast<std::size_t>(cols)), w;
    for (std::size_t r0 = 0; r0 < kept.size(); r0 += static_cast<std::size_t>(cols)) {
      for (std::int64_t c = 0; c < cols; ++c)
        s[c] = attn::test::masked_score(kept[r0 + c], xL.data()[r0 + c], fill);
      attn::test::oracle_softmax_row(s, w);
      out.insert(out.end(), w.begin(), w.end());
    }
    return out;
  };
  const std::vector<long double> dyL = attn::test::widen_values(dy);
  const auto loss = [&] { return attn::test::dot(dyL, forward()); };
  const std::vector<long double> bound = attn::test::masked_softmax_bound(forward(), dyL, kept, cols);
  attn::test::expect_gradient(dx, x.shape(), central_differences(xL, loss), bound, label);
  return dx;
}

TEST(MaskedSoftmaxBackward, WithoutLengths) {
  check(randn({2, 3, 5}, 1), randn({2, 3, 5}, 2), std::nullopt, MaskFill::neg_inf, "(2, 3, 5)");
  check(randn({6}, 3), randn({6}, 4), std::nullopt, MaskFill::neg_inf, "1-D");
}

TEST(MaskedSoftmaxBackward, OneLengthPerLeadingIndex) {
  for (MaskFill fill : {MaskFill::neg_inf, MaskFill::d2l}) {
    const IndexTensor lens = IndexTensor::from({2}, {2, 3});
    check(randn({2, 3, 4}, 5), randn({2, 3, 4}, 6), lens, fill, "lengths (2)");
  }
}

TEST(MaskedSoftmaxBackward, OneLengthPerRow) {
  const IndexTensor lens = IndexTensor::from({2, 3}, {1, 3, 4, 2, 4, 3});
  check(randn({2, 3, 4}, 7), randn({2, 3, 4}, 8), lens, MaskFill::d2l, "lengths (2, 3)");
}

TEST(MaskedSoftmaxBackward, EmptyRowsHaveZeroGradientUnderEitherFill) {
  // Under d2l's fill the row is uniform, but every entry is the fill, a constant.
  const IndexTensor lens = IndexTensor::from({2, 3}, {0, 3, 4, 2, 0, 3});
  for (MaskFill fill : {MaskFill::neg_inf, MaskFill::d2l}) {
    const Tensor dx = check(randn({2, 3, 4}, 9), randn({2, 3, 4}, 10), lens, fill, "empty rows");
    for (std::int64_t c = 0; c < 4; ++c) {
      EXPECT_EQ(dx(0, 0, c), 0.0f);
      EXPECT_EQ(dx(1, 1, c), 0.0f);
    }
  }
}

TEST(MaskedSoftmaxBackward, StridedViews) {
  const Tensor x = randn({4, 2, 3}, 11).transpose(0, 2);  // (3, 2, 4)
  const Tensor dy = randn({3, 8}, 12).reshape({3, 2, 4});
  check(x, dy, IndexTensor::from({3}, {4, 1, 2}), MaskFill::neg_inf, "strided");
}

TEST(MaskedSoftmaxBackward, ErrorsNameTheArguments) {
  const Tensor y = attn::masked_softmax(randn({2, 3, 4}, 1));
  EXPECT_THAT(
      error_of([&] {
        attn::masked_softmax_backward(y, randn({2, 3, 5}, 2));
      }),
      HasSubstrs({"[masked_softmax_backward]", "dY must have Y's shape", "Y (2, 3, 4)", "dY (2, 3, 5)"}));
  EXPECT_THAT(error_of([&] {
                attn::masked_softmax_backward(y, y, IndexTensor::from({3}, {1, 2, 3}));
              }),
              HasSubstrs({"[masked_softmax_backward]", "valid_lens (3)", "Y (2, 3, 4)"}));
  EXPECT_THAT(error_of([&] {
                attn::masked_softmax_backward(y, y, IndexTensor::from({2}, {1, 5}));
              }),
              HasSubstrs({"holds 5", "[0, 4]"}));
}

}  // namespace
