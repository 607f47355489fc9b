// masked_softmax's input read as rows with one length each: shared by the forward
// and the backward, so that both accept the same valid_lens.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "attn/tensor.hpp"
#include "kernels/params.hpp"

namespace attn::detail {

struct MaskedSoftmaxRows {
  std::int64_t rows = 0, cols = 0;
  IndexTensor lens;                  // contiguous, undefined without valid_lens
  std::int64_t rows_per_length = 1;  // row r keeps lens[r / rows_per_length]
};

// d2l's rule: valid_lens is (x.size(0)), one length per leading index repeated
// over its rows, or x's shape without its last dim, one per row; each in
// [0, cols]. Throws attn::Error naming `op` and `name` (x's name) otherwise.
MaskedSoftmaxRows masked_softmax_rows(std::string_view op, std::string_view name, const Tensor& x,
                                      const std::optional<IndexTensor>& valid_lens);

// Sizes and lengths into a kernel's params.
inline void set_rows(MaskedSoftmaxParams& p, const MaskedSoftmaxRows& r) {
  p.rows = r.rows;
  p.cols = r.cols;
  p.lengths = r.lens.defined() ? r.lens.data() : nullptr;
  p.rows_per_length = r.rows_per_length;
}

}  // namespace attn::detail
