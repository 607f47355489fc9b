// The reference kernels: plain loops with double accumulation, written to be read.
// They are the oracle that every fast kernel is tested against; never tune them.
#pragma once

#include <span>

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

}  // namespace attn::detail
