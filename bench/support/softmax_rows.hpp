// The baseline's softmax over rows of scores, in the widest vectors the CPU has
// (Highway's Exp, within 1 ulp), as a framework's vectorised softmax kernel runs it:
// the row max, then each exp(s - max) and their sum, then the scaling by 1 / sum.
#pragma once

#include <cstdint>

namespace attn::bench {

// Softmax of each of `rows` rows of `s` (row r is query r0 + r, `n` keys wide, rows
// ld apart). With `causal`, row r keeps keys j <= r0 + r, and the keys after them
// get weight 0.
void softmax_rows(float* s, std::int64_t rows, std::int64_t n, std::int64_t ld, std::int64_t r0, bool causal);

}  // namespace attn::bench
