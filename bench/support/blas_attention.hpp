// The baseline every attention kernel is compared with: OpenBLAS sgemm + softmax +
// sgemm, what a framework without a fused kernel does.
//
//   S = scale * Q K^T      cblas_sgemm          (rows, L) per head
//   P = softmax(S)         softmax_rows.hpp     (vectorised exp; causal: j > i gets 0)
//   O = P V                cblas_sgemm          (rows, D)
//
// Two variants: `full` materialises the whole (L, L) scores of one head at a time;
// `row_blocked` does kRowBlock query rows at a time, so its scores take kRowBlock x L
// (causal: a block multiplies only the keys its last row sees, and masks the rest).
// The threads take whole heads (full) or (head, row block) tasks (row_blocked), each
// calling single-threaded sgemm on its own scores. Threading each sgemm with
// OpenBLAS's own threads and the softmax with OpenMP was tried first: the two pools
// fought for the cores (OpenBLAS's idle threads spin), and on 2 cores a 2-thread
// L = 128 forward took 60 ms instead of 0.3 ms.
// The scratch is allocated once, at construction: extra_bytes() is its peak extra
// memory, threads x rows x L floats.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "attn/tensor.hpp"

namespace attn::bench {

enum class BlasVariant { full, row_blocked };
std::string to_string(BlasVariant variant);

inline constexpr std::int64_t kRowBlock = 256;

class BlasAttention {
 public:
  // For q, k, v and out of shape (B, H, L, D), contiguous, on `threads` threads.
  BlasAttention(std::int64_t length, std::int64_t head_dim, BlasVariant variant, int threads);

  // out = softmax(q k^T / sqrt(D), causal top-left) v. Throws attn::Error for shapes
  // other than (B, H, length, head_dim) or a non-contiguous tensor.
  void run(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out, bool causal);

  std::int64_t extra_bytes() const {
    return static_cast<std::int64_t>(scores_.size() * sizeof(float));
  }

 private:
  std::int64_t length_, head_dim_;
  BlasVariant variant_;
  int threads_;
  std::int64_t rows_;          // L (full) or kRowBlock (row_blocked)
  std::vector<float> scores_;  // (threads, rows, L)
};

// OpenBLAS's own description of itself: openblas_get_corename() (the kernels in use,
// e.g. "Zen" or "Haswell") and openblas_get_config().
std::string openblas_corename();
std::string openblas_config();

}  // namespace attn::bench
