"""The error budgets of the parity tests: the rule of tests/tolerance.hpp, in Python.

Errors are norm-wise, ||got - want||_2 / ||want||_2 over a whole output, against a
float64 result computed from the same float32 inputs. With unit roundoff
u = eps_f32 / 2:

 - a float32 chain of reductions of lengths n_1, n_2, ... is within
   gamma_n = n u, n = n_1 + n_2 + ... (Higham's bound for recursive summation);
 - the softmax turns a relative score error d into a weight error of at most
   2 max|s| d; scores of unit-variance inputs stay below 8, hence the gain 16;
 - 4 more roundings cover the intermediate float results that are returned
   (weights, then output).

So a chain through a softmax is within SOFTMAX_GAIN * (n + 4) * u
(float_chain_budget, as attn::test::float_chain_budget). A plain float sum without
a softmax, y = sum_k t_k, is within gamma_n sum_k |t_k| elementwise, so within
(n * condition + 1) * u norm-wise: gamma_n times the condition
||sum_k |t_k||| / ||y|| (1 when no term cancels another) and the rounding of the
result (float_sum_budget, as attn::test::float_sum_budget).

Gradients (grad_error_bound, as attn::test::grad_error_bound): a reference backward
reads float32 values that its forward rounded and rounds its results once; the
tests' grad_bounds.hpp follows those roundings through the backward's formulas to
an elementwise bound u E, computed from the long-double forward (grad_case prints
||E||). So ||G_attn - G|| <= (||E|| + ||G||) (u + DOUBLE_ARITHMETIC), G the float64
gradient, DOUBLE_ARITHMETIC covering the double arithmetic on both sides (the
reference's and torch's float64 autograd, which stands in for central differences
here). The bound is absolute, so that a gradient that is zero by cancellation is
held to the size of its terms.
"""

import numpy as np

EPS_F32 = float(np.finfo(np.float32).eps)
UNIT_ROUNDOFF = EPS_F32 / 2
SOFTMAX_GAIN = 16


def float_chain_budget(*reduction_lengths, gain=SOFTMAX_GAIN):
    """gain * gamma_{n+4} for a float32 chain through a softmax, n = sum of the lengths."""
    return gain * (sum(reduction_lengths) + 4) * UNIT_ROUNDOFF


def float_sum_budget(*reduction_lengths, condition=1.0):
    """gamma_n * condition + u for float32 sums without a softmax, n = sum of the lengths."""
    return (sum(reduction_lengths) * condition + 1) * UNIT_ROUNDOFF


def mha_budgets(embed_dim, num_heads, S, kdim=None, vdim=None, add_bias_kv=False, add_zero_attn=False):
    """(output, weights) budgets of a MultiHeadAttention forward, the reductions that
    test_multi_head_attention.cpp's budgets_for counts: the in-projection over the
    widest input (E, kdim or vdim), the head dim (scores), the S' = S (+1 for
    add_bias_kv, +1 for add_zero_attn) keys twice (softmax sum, weighted sum) and the
    out-projection over E; the weights stop after the softmax and add the average
    over the heads."""
    E = embed_dim
    widest_input = max(E, kdim or E, vdim or E)
    head_dim = E // num_heads
    keys = S + int(add_bias_kv) + int(add_zero_attn)
    return (float_chain_budget(widest_input, head_dim, keys, keys, E),
            float_chain_budget(widest_input, head_dim, keys, num_heads))


DOUBLE_ARITHMETIC = 1e-9


def grad_error_bound(bound_norm, want_norm):
    """(||E|| + ||G||) (u + DOUBLE_ARITHMETIC): the budget of ||G_attn - G||."""
    return (bound_norm + want_norm) * (UNIT_ROUNDOFF + DOUBLE_ARITHMETIC)


def relative_error(got, want):
    """||got - want|| / ||want|| in float64, as attn::test::relative_error: 0 when
    both are zero, infinity when only want is."""
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    assert got.shape == want.shape, (got.shape, want.shape)
    norm = np.linalg.norm(want)
    diff = np.linalg.norm(got - want)
    if norm == 0:
        return 0.0 if diff == 0 else float("inf")
    return diff / norm
