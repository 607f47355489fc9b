// The reference kernels: plain loops with double accumulation, written to be read.
// They are the oracle that every fast kernel is tested against; never tune them.
#pragma once

#include "kernels/params.hpp"

namespace attn::detail {

void masked_softmax_reference(const MaskedSoftmaxParams& p);
void sdpa_reference(const SdpaParams& p);
void additive_attention_reference(const AdditiveParams& p);
// The part shared by all scoring functions: mask, softmax, dropout and the
// weighted sum of values.
void attend_reference(const AttentionParams& p, const ScoreFn& score);
void linear_reference(const LinearParams& p);

}  // namespace attn::detail
