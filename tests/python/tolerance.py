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
(float_chain_budget, as attn::test::float_chain_budget). A kernel that accumulates
in double and rounds once to float is within u per element; REFERENCE_BUDGET
allows 4 eps for the returned intermediates (as attn::test::kReferenceBudget). A plain float sum without
a softmax, y = sum_k t_k, is within gamma_n sum_k |t_k| elementwise, so within
(n * condition + 1) * u norm-wise: gamma_n times the condition
||sum_k |t_k||| / ||y|| (1 when no term cancels another) and the rounding of the
result (float_sum_budget, as attn::test::float_sum_budget).

Weights that travel through a safetensors file add no error: F32 tensors are copied
bit for bit, and F64, F16 and BF16 tensors holding values of the module's float32
parameters (or rounded to 16 bits first, in both torch and the file) convert exactly
(WEIGHT_FILE_ERROR). A module loaded from a file therefore keeps the budget of its
forward.

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
REFERENCE_BUDGET = 4 * EPS_F32
FUSED_MIN_TILE = 16
WEIGHT_FILE_ERROR = 0.0


def float_chain_budget(*reduction_lengths, gain=SOFTMAX_GAIN):
    """gain * gamma_{n+4} for a float32 chain through a softmax, n = sum of the lengths."""
    return gain * (sum(reduction_lengths) + 4) * UNIT_ROUNDOFF


def float_sum_budget(*reduction_lengths, condition=1.0):
    """gamma_n * condition + u for float32 sums without a softmax, n = sum of the lengths."""
    return (sum(reduction_lengths) * condition + 1) * UNIT_ROUNDOFF


def fused_attention_budget(key_dim, keys):
    """The fused CPU kernel (what scaled_dot_product_attention runs), as
    attn::test::fused_attention_budget: a float chain over the score's dot product
    (key_dim) and the scaling of q folded into it (+1); the weighted sum over the
    keys, whose running output and sum are rescaled once per key tile (at most
    keys / FUSED_MIN_TILE more roundings); the vector exp and the final division (+2)."""
    return float_chain_budget(key_dim + 1, keys + -(-keys // FUSED_MIN_TILE), 2)


def additive_budgets(query_size, key_size, num_hiddens, keys):
    """(output, weights) of d2l's AdditiveAttention, as test_additive_attention_module.cpp
    counts them: the two projections (query_size + key_size), w_v over num_hiddens, the
    softmax over the keys, then (output only) the weighted sum over the keys."""
    return (float_chain_budget(query_size + key_size, num_hiddens, keys, keys),
            float_chain_budget(query_size + key_size, num_hiddens, keys))


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


def attention_module_budget(input_width, head_dim, keys, out_width=0):
    """Output budget of a multi-head module with its own widths (the tutorials' modules:
    d2l's MultiHeadAttention, the Transformer tutorial's, Self_Attention): the chain of
    mha_budgets, the in-projection over the widest input, the head dim, the keys twice
    and the output projection over out_width (0 when the module has none)."""
    return float_chain_budget(input_width, head_dim, keys, keys, out_width)


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


def adam_budget(steps):
    """Adam's parameter change over `steps` steps, norm-wise against torch.optim.Adam.

    Each step rounds the moments (2 roundings each, where torch's add_ with alpha
    may fuse one), the denominator (3) and the update (3): about 8 u per step, and
    the moments carry the earlier steps' errors forward, so the change p - p0 is
    within float_sum_budget(8 * steps).
    """
    return float_sum_budget(8 * steps)
