// The reference kernels: plain loops with double accumulation, written to be read.
// They are the oracle that every fast kernel is tested against; never tune them.
#pragma once

#include <span>
#include <vector>

#include "kernels/params.hpp"

namespace attn::detail {

// The score a masked entry gets under `fill`: -inf, or d2l's -1e6.
double masked_score(MaskFill fill);
// softmax of one row of scores in place, masked entries already filled. Returns
// the log-sum-exp; a row with nothing allowed (all -inf) gets zero weights and
// -inf instead of 0/0.
double softmax_row(std::span<double> s);

void masked_softmax_reference(const MaskedSoftmaxParams& p);
void sdpa_reference(const SdpaParams& p);
void additive_attention_reference(const AdditiveParams& p);
// The part shared by all scoring functions: mask, softmax, dropout and the
// weighted sum of values.
void attend_reference(const AttentionParams& p, const ScoreFn& score);
void linear_reference(const LinearParams& p);

// The raw score scale * q[b, h, i] . k[b, h / group, j], in double.
double sdpa_score(const SdpaParams& p, std::int64_t b, std::int64_t h, std::int64_t i, std::int64_t j);
// Rows (B, 1, L, D) of x projected by w (Hd, D): (B, L, Hd) in double.
std::vector<double> additive_projection(const float* x, const Strides4& stride, std::int64_t batch,
                                        std::int64_t len, std::int64_t dim, const float* w,
                                        std::int64_t hidden);

// ---- backward: each inverts its forward above, line by line ----
void masked_softmax_backward_reference(const MaskedSoftmaxBackwardParams& p);
void sdpa_backward_reference(const SdpaBackwardParams& p);
void additive_attention_backward_reference(const AdditiveBackwardParams& p);
// The part shared by all scoring functions: P from the saved lse, dropout, dv,
// D_i and dS (params.hpp states the contract); hands dS of every allowed entry to
// `score_grad` and adds it to each bias term's gradient.
void attend_backward_reference(const AttentionParams& p, const AttentionGradParams& g,
                               const ScoreFn& score, const ScoreGradFn& score_grad);
void linear_backward_reference(const LinearBackwardParams& p);

}  // namespace attn::detail
