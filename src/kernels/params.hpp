// The params structs of the kernels: pointers, sizes and strides, filled by an op
// after validation. Kernels do not check their inputs. A backward's params extend
// its forward's (FlashAttention's Flash_bwd_params over Flash_fwd_params): the
// backward reads what the forward read and wrote, and writes the gradients.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

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

// dx of y = masked_softmax(x): reads y (`out`, the forward's output) and dy; x
// itself is not needed.
struct MaskedSoftmaxBackwardParams : MaskedSoftmaxParams {
  const float* dy = nullptr;  // (rows, cols), contiguous
  float* dx = nullptr;        // (rows, cols), contiguous
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

// ---- backward ----------------------------------------------------------------------
//
// The contract every attention backward shares (FlashAttention-2's), for a row
// (b, h, i) with scores s_ij = score + bias (masked: the fill) and the forward's
// saved out O_i and lse_i:
//   P_ij  = exp(s_ij - lse_i)                 the softmax, recomputed from the saved lse;
//                                             lse_i = -inf (nothing allowed): P = 0, the
//                                             row adds nothing to any gradient
//   m_ij  = keep(seed, row * Lk + j) / (1 - p), or 0: the forward's dropout, regenerated
//   dP_ij = m_ij dO_i . v_j
//   D_i   = rowsum(dO_i o O_i)  (= sum_j P_ij dP_ij, the saved out standing in for P)
//   dS_ij = P_ij (dP_ij - D_i)                the gradient of the score s_ij
//   dv_j += P_ij m_ij dO_i
// and dS flows into the scoring function's inputs (q, k; or the additive
// projections) and into each bias term, for allowed entries only (a masked score is
// a constant). A fused backward stores D_i as a (B, Hq, Lq) float buffer in a pass
// before its tiles; the reference computes it per row. Under MaskFill::d2l (a
// reference-only fill) the reference takes lse again from the row's scores instead
// of reading it (attention_backward.cpp says why).

// A bias term's gradient: the term's own shape, contiguous, addressed through the
// term's broadcast strides over (B, H, Lq, Lk), so that entries the bias is
// broadcast over accumulate into one element.
struct BiasGrad {
  float* data = nullptr;
  Strides4 stride;
  std::int64_t numel = 0;
};

// What every attention backward reads and writes beside its scoring function's
// gradients.
struct AttentionGradParams {
  const float* dout = nullptr;  // (B, Hq, Lq, Dv)
  Strides4 dout_stride;
  float* dv = nullptr;           // (B, Hkv, Lk, Dv), contiguous
  std::vector<BiasGrad> dbias;   // one per bias term of the mask, or none
};

// The gradient that the shared tail hands to a scoring function: dS_ij, the
// gradient of the raw score of (b, h, i, j), for allowed entries.
using ScoreGradFn =
    std::function<void(std::int64_t b, std::int64_t h, std::int64_t i, std::int64_t j, double ds)>;

// Scaled dot-product attention backward: the forward's params (q, k, v, out, lse,
// mask, dropout, fill, scale: out and lse are read) and the gradients.
struct SdpaBackwardParams : SdpaParams {
  AttentionGradParams grad;
  float* dq = nullptr;  // (B, Hq, Lq, Dk), contiguous
  float* dk = nullptr;  // (B, Hkv, Lk, Dk), contiguous
};

// Additive attention backward: the forward's params and the gradients.
struct AdditiveBackwardParams : AdditiveParams {
  AttentionGradParams grad;
  float* dq = nullptr;    // (B, 1, Lq, Dq), contiguous
  float* dk = nullptr;    // (B, 1, Lk, Dk), contiguous
  float* dw_q = nullptr;  // (Hd, Dq), contiguous
  float* dw_k = nullptr;  // (Hd, Dk), contiguous
  float* dw_v = nullptr;  // (Hd), contiguous
};

// y = x W^T + b. x (rows, in) with row stride; weight (out, in) contiguous.
struct LinearParams {
  const float* x = nullptr;
  std::int64_t x_row_stride = 0, x_col_stride = 1;
  const float* weight = nullptr;  // (out, in), contiguous
  const float* bias = nullptr;    // (out) or null
  float* y = nullptr;             // (rows, out), contiguous
  std::int64_t rows = 0, in = 0, out = 0;
};

// dx = dy W, dW = dy^T x, db = sum_rows dy: reads x and weight (y is not read).
struct LinearBackwardParams : LinearParams {
  const float* dy = nullptr;  // (rows, out), contiguous
  float* dx = nullptr;        // (rows, in), contiguous
  float* dweight = nullptr;   // (out, in), contiguous
  float* dbias = nullptr;     // (out), or null without a bias
};

}  // namespace attn::detail
