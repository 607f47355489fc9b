// The gradient checks of attention: a backward's gradients against central
// differences of the long-double oracle (oracle.hpp) with the same mask, scale,
// fill and kept dropout weights, within the budgets of grad_bounds.hpp. Shared by
// the op tests and the module tests.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "attn/backward.hpp"
#include "grad_check.hpp"
#include "oracle.hpp"

namespace attn::test {

// Scaled dot-product attention: g's dq, dk, dv (the shapes of q, k, v, 3-D or 4-D)
// and dbias (one per bias term) at (q, k, v) given dout.
inline void expect_sdpa_gradients(const AttentionGrads& g, const Tensor& q, const Tensor& k, const Tensor& v,
                                  const Tensor& dout, const MaskParts& parts, long double scale,
                                  MaskFill fill, const DropFn& drop, const std::string& label) {
  const Tensor q4 = heads_of(q), k4 = heads_of(k), v4 = heads_of(v);
  const Index B = q4.size(0), H = q4.size(1), Lq = q4.size(2), Lk = k4.size(2), Dk = q4.size(3);
  const OracleMask mask(parts, B, H, Lq, Lk);
  const LTensor qL = widen(q4), kL = widen(k4), vL = widen(v4);
  const auto forward = [&] {
    return oracle_attention(qL, kL, vL, scale, mask.allowed, mask.bias, fill, drop);
  };
  const std::vector<long double> dO = widen_values(heads_of(dout));
  const auto loss = [&] { return dot(dO, forward().out); };

  const OracleResult exact = forward();
  const AttentionTerms t = attention_terms(exact, mask, drop, dO, vL, H, Lq, fill);
  const SdpaBound bound = sdpa_bound(t, qL.to_vector(), kL.to_vector(), Dk, scale);
  expect_gradient(g.dq, q.shape(), central_differences(qL, loss), bound.dq_err, label + " dq");
  expect_gradient(g.dk, k.shape(), central_differences(kL, loss), bound.dk_err, label + " dk");
  expect_gradient(g.dv, v.shape(), central_differences(vL, loss), bound.softmax.dv_err, label + " dv");
  EXPECT_EQ(g.dbias.size(), parts.biases.size()) << label;
  for (std::size_t n = 0; n < parts.biases.size() && n < g.dbias.size(); ++n)
    expect_gradient(g.dbias[n], parts.biases[n].shape(), central_differences(mask.biases[n], loss),
                    bias_bound(t, bound.softmax, parts.biases[n].shape()),
                    label + " dbias[" + std::to_string(n) + "]");

  // Rows with nothing allowed have exactly zero gradient.
  const Tensor dq4 = heads_of(g.dq);
  for (Index b = 0; b < B; ++b)
    for (Index h = 0; h < H; ++h)
      for (Index i = 0; i < Lq; ++i) {
        if (!std::isinf(exact.lse[t.row(b, h, i)])) continue;
        for (Index d = 0; d < Dk; ++d) EXPECT_EQ(dq4(b, h, i, d), 0.0f) << label << ": empty row dq";
      }
}

// Additive attention: g's gradients of queries, keys, values, the three weights
// and the bias terms, given dout.
inline void expect_additive_gradients(const AdditiveGrads& g, const Tensor& queries, const Tensor& keys,
                                      const Tensor& values, const Tensor& w_q, const Tensor& w_k,
                                      const Tensor& w_v, const Tensor& dout, const MaskParts& parts,
                                      MaskFill fill, const DropFn& drop, const std::string& label) {
  const Index B = queries.size(0), Lq = queries.size(1), Lk = keys.size(1);
  const OracleMask mask(parts, B, 1, Lq, Lk);
  const LTensor qL = widen(queries), kL = widen(keys), vL = widen(values);
  const LTensor wqL = widen(w_q), wkL = widen(w_k), wvL = widen(w_v);
  const auto forward = [&] {
    return oracle_additive(qL, kL, vL, wqL, wkL, wvL, mask.allowed, fill, drop, mask.bias);
  };
  const std::vector<long double> dO = widen_values(dout);
  const auto loss = [&] { return dot(dO, forward().out); };

  const AttentionTerms t = attention_terms(forward(), mask, drop, dO, vL.unsqueeze(1), 1, Lq, fill);
  const AdditiveBound bound = additive_bound(t, qL, kL, wqL, wkL, wvL);
  expect_gradient(g.dq, queries.shape(), central_differences(qL, loss), bound.dq_err, label + " dqueries");
  expect_gradient(g.dk, keys.shape(), central_differences(kL, loss), bound.dk_err, label + " dkeys");
  expect_gradient(g.dv, values.shape(), central_differences(vL, loss), bound.softmax.dv_err,
                  label + " dvalues");
  expect_gradient(g.dw_q, w_q.shape(), central_differences(wqL, loss), bound.dw_q_err, label + " dw_q");
  expect_gradient(g.dw_k, w_k.shape(), central_differences(wkL, loss), bound.dw_k_err, label + " dw_k");
  expect_gradient(g.dw_v, w_v.shape(), central_differences(wvL, loss), bound.dw_v_err, label + " dw_v");
  EXPECT_EQ(g.dbias.size(), parts.biases.size()) << label;
  for (std::size_t n = 0; n < parts.biases.size() && n < g.dbias.size(); ++n)
    expect_gradient(g.dbias[n], parts.biases[n].shape(), central_differences(mask.biases[n], loss),
                    bias_bound(t, bound.softmax, parts.biases[n].shape()), label + " dbias");
}

}  // namespace attn::test
