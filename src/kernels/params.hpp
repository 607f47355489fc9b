// The params structs of the kernels: pointers, sizes and strides, filled by an op
// after validation. Kernels do not check their inputs.
#pragma once

#include <cstdint>
#include <functional>

#include "attn/ops.hpp"
#include "mask_view.hpp"

namespace attn::detail {

// softmax over rows of length `cols`, keeping the first row_length(r) entries.
struct MaskedSoftmaxParams {
  const float* x = nullptr;  // (rows, cols) with row stride x_row_stride, col stride x_col_stride
  std::int64_t x_row_stride = 0, x_col_stride = 1;
  float* out = nullptr;  // (rows, cols), contiguous
  std::int64_t rows = 0, cols = 0;
  const std::int64_t* lengths = nullptr;  // row r keeps lengths[r / rows_per_length]
  std::int64_t rows_per_length = 1;       // keys; null lengths keep every column
  MaskFill fill = MaskFill::neg_inf;
};

// Query heads per key/value head (grouped-query attention); 1 without heads.
inline std::int64_t kv_group(std::int64_t q_heads, std::int64_t kv_heads) {
  return kv_heads > 0 ? q_heads / kv_heads : 1;
}

// What every attention kernel reads and writes beside its scores.
struct AttentionParams {
  std::int64_t batch = 0, q_heads = 0, kv_heads = 0;  // B, Hq, Hkv
  std::int64_t queries = 0, keys = 0;                 // Lq, Lk
  std::int64_t value_dim = 0;                         // Dv
  const float* v = nullptr;  // (B, Hkv, Lk, Dv)
  Strides4 v_stride;
  float* out = nullptr;  // (B, Hq, Lq, Dv)
  Strides4 out_stride;
  float* lse = nullptr;      // (B, Hq, Lq), contiguous
  float* weights = nullptr;  // (B, Hq, Lq, Lk), contiguous; null when not asked for
  bool weights_before_dropout = false;
  const MaskView* mask = nullptr;
  Dropout dropout;
  MaskFill fill = MaskFill::neg_inf;
};

// Scaled dot-product scores: scale * q[b, h] . k[b, h / (Hq / Hkv)].
struct SdpaParams : AttentionParams {
  std::int64_t key_dim = 0;  // Dk
  const float* q = nullptr;  // (B, Hq, Lq, Dk)
  Strides4 q_stride;
  const float* k = nullptr;  // (B, Hkv, Lk, Dk)
  Strides4 k_stride;
  double scale = 1.0;
};

// Additive scores w_v . tanh(W_q q_i + W_k k_j), one head.
struct AdditiveParams : AttentionParams {
  std::int64_t query_dim = 0, key_dim = 0, hidden = 0;  // Dq, Dk, Hd
  const float* q = nullptr;  // (B, 1, Lq, Dq)
  Strides4 q_stride;
  const float* k = nullptr;  // (B, 1, Lk, Dk)
  Strides4 k_stride;
  const float* w_q = nullptr;  // (Hd, Dq), contiguous
  const float* w_k = nullptr;  // (Hd, Dk), contiguous
  const float* w_v = nullptr;  // (Hd), contiguous
};

// The raw score of (b, h, i, j), before masking.
using ScoreFn = std::function<double(std::int64_t b, std::int64_t h, std::int64_t i, std::int64_t j)>;

// y = x W^T + b. x (rows, in) with row stride; weight (out, in) contiguous.
struct LinearParams {
  const float* x = nullptr;
  std::int64_t x_row_stride = 0, x_col_stride = 1;
  const float* weight = nullptr;  // (out, in), contiguous
  const float* bias = nullptr;    // (out) or null
  float* y = nullptr;             // (rows, out), contiguous
  std::int64_t rows = 0, in = 0, out = 0;
};

}  // namespace attn::detail
