#include "ops/masked_softmax_rows.hpp"

#include <algorithm>

#include "ops/check.hpp"

namespace attn::detail {

MaskedSoftmaxRows masked_softmax_rows(std::string_view op, std::string_view name, const Tensor& x,
                                      const std::optional<IndexTensor>& valid_lens) {
  if (x.rank() < 1) fail(op, std::string(name) + " must have at least 1 dim, got " + describe(name, x));
  MaskedSoftmaxRows r;
  r.cols = x.size(-1);
  r.rows = x.numel() / std::max<std::int64_t>(r.cols, 1);
  const Shape row_shape(x.shape().begin(), x.shape().end() - 1);
  if (!valid_lens) return r;

  // d2l repeats 1-D lengths over the rows of each leading index and flattens
  // 2-D ones: one length per leading index, or one per row.
  r.lens = valid_lens->contiguous();
  const bool per_leading = x.rank() >= 2 && r.lens.rank() == 1 && r.lens.size(0) == x.size(0);
  const bool per_row = r.lens.shape() == row_shape;
  if (!per_leading && !per_row)
    fail(op, "valid_lens " + r.lens.shape_string() + " must be (" +
                 std::to_string(x.rank() >= 2 ? x.size(0) : 0) + ") or " + shape_str(row_shape) + " for " +
                 describe(name, x));
  for (std::int64_t len : r.lens.to_vector())
    if (len < 0 || len > r.cols)
      fail(op, "valid_lens " + r.lens.shape_string() + " holds " + std::to_string(len) + ", outside [0, " +
                   std::to_string(r.cols) + "] for " + describe(name, x));
  if (!per_row) r.rows_per_length = std::max<std::int64_t>(r.rows / std::max<std::int64_t>(x.size(0), 1), 1);
  return r;
}

}  // namespace attn::detail
