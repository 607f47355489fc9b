"""attn's modules from Python against torch.nn and d2l's code.

MultiheadAttention runs every case of mha_cases.py (every option of
nn.MultiheadAttention) with torch's parameters loaded by name through
load_state_dict, and compares output and weights with torch's float64 forward.
AdditiveAttention, DotProductAttention and Linear are held to d2l's code and
nn.Linear in float64.

Error budgets (tolerance.py): mha_budgets for MultiheadAttention (the chain the
C++ tests count), additive_budgets for AdditiveAttention; DotProductAttention
keeps d2l's -1e6 fill and so runs the reference kernel (REFERENCE_BUDGET);
Linear is a float sum over in_features, float_sum_budget with the sums'
condition measured in float64.
"""

import inspect
import math

import numpy as np
import pytest
import torch

from attn_module import attn
from d2l_code import AdditiveAttention as D2lAdditiveAttention
from d2l_code import DotProductAttention as D2lDotProductAttention
from mha_cases import CASE_IDS, CASES, torch_case
from tolerance import (REFERENCE_BUDGET, additive_budgets, float_sum_budget, mha_budgets,
                       relative_error)


def numpy_state(module):
    return {name: t.detach().numpy() for name, t in module.state_dict().items()}


def as_numpy(t):
    return None if t is None else t.numpy()


def attn_twin(torch_module, **options):
    """An attn.MultiheadAttention with torch_module's options and parameters, in eval mode."""
    m = attn.MultiheadAttention(**options)
    m.load_state_dict(numpy_state(torch_module))
    return m.eval()


@pytest.mark.parametrize("name,options,L,S,B,masks,flags", CASES, ids=CASE_IDS)
def test_multihead_attention_matches_torch(name, options, L, S, B, masks, flags):
    c = torch_case(name, options, L, S, B, masks, flags)
    m = attn_twin(c.module, **options)
    out, weights = m(c.query.numpy(), c.key.numpy(), c.value.numpy(),
                     key_padding_mask=as_numpy(c.key_padding_mask), need_weights=c.need_weights,
                     attn_mask=as_numpy(c.attn_mask), average_attn_weights=c.average_attn_weights,
                     is_causal=c.is_causal)
    tol, tol_w = c.budgets
    assert out.dtype == np.float32 and out.shape == tuple(c.want_output.shape)
    err = relative_error(out, c.want_output.numpy())
    assert err <= tol, f"{name}: output relative error {err:.3g} > {tol:.3g}"
    if c.need_weights:
        assert weights.shape == tuple(c.want_weights.shape)
        err_w = relative_error(weights, c.want_weights.numpy())
        assert err_w <= tol_w, f"{name}: weights relative error {err_w:.3g} > {tol_w:.3g}"
    else:
        assert weights is None


def test_multihead_attention_takes_torch_positional_order_and_strided_inputs():
    c = torch_case("positional", dict(embed_dim=8, num_heads=2, batch_first=True), 5, 6, 3,
                   {"kpm": "bool", "attn": "float2"}, {"average_attn_weights": False})
    m = attn_twin(c.module, embed_dim=8, num_heads=2, batch_first=True)
    # (B, L, E) read through a transposed (L, B, E) buffer: a strided view, no copy
    query = np.ascontiguousarray(c.query.numpy().transpose(1, 0, 2)).transpose(1, 0, 2)
    assert not query.flags.c_contiguous
    out, weights = m.forward(query, c.key.numpy(), c.value.numpy(), c.key_padding_mask.numpy(),
                             True, c.attn_mask.numpy(), False)
    assert relative_error(out, c.want_output.numpy()) <= c.budgets[0]
    assert relative_error(weights, c.want_weights.numpy()) <= c.budgets[1]


def parameters(function, leave_out=("self", "device", "dtype", "kwargs")):
    """(name, kind, default) of each parameter: a signature without the annotations."""
    return [(p.name, p.kind, p.default) for p in inspect.signature(function).parameters.values()
            if p.name not in leave_out]


def test_signatures_are_torchs():
    assert parameters(attn.MultiheadAttention) == parameters(torch.nn.MultiheadAttention)
    assert parameters(attn.Linear) == parameters(torch.nn.Linear)
    # torch 2 adds is_causal=False to torch 1.13's forward
    is_causal = ("is_causal", inspect.Parameter.POSITIONAL_OR_KEYWORD, False)
    torch_forward = parameters(torch.nn.MultiheadAttention.forward) + [is_causal]
    assert parameters(attn.MultiheadAttention.forward) == torch_forward
    assert parameters(attn.MultiheadAttention(8, 2)) == torch_forward, "a call is a forward"
    for method in ("train", "eval", "state_dict", "load_state_dict", "named_parameters", "parameters"):
        got = [p[0] for p in parameters(getattr(attn.MultiheadAttention, method))]
        want = [p[0] for p in parameters(getattr(torch.nn.Module, method))]
        assert got == want[:len(got)], method  # torch's extra arguments (prefix, recurse, ...) come last


def test_d2l_signatures_are_d2ls():
    for ours, theirs in [(attn.AdditiveAttention, D2lAdditiveAttention),
                         (attn.DotProductAttention, D2lDotProductAttention)]:
        assert [p[0] for p in parameters(ours)] == [p[0] for p in parameters(theirs)]
        assert [p[0] for p in parameters(ours.forward)] == [p[0] for p in parameters(theirs.forward)]


def test_multihead_attention_fully_masked_rows_give_the_output_bias_not_nan():
    torch_module = torch.nn.MultiheadAttention(8, 2)
    with torch.no_grad():
        for p in torch_module.parameters():
            p.copy_(torch.randn(p.shape, generator=torch.Generator().manual_seed(9)))
    m = attn_twin(torch_module, embed_dim=8, num_heads=2)
    x = np.random.default_rng(9).standard_normal((4, 2, 8), dtype=np.float32)
    kpm = np.zeros((2, 4), dtype=bool)
    kpm[1] = True  # batch 1 sees no key
    out, weights = m(x, x, x, key_padding_mask=kpm)
    assert np.isfinite(out).all() and np.isfinite(weights).all()
    assert np.array_equal(out[:, 1], np.broadcast_to(m.out_proj.bias, (4, 8)))
    assert np.all(weights[1] == 0)


def test_multihead_attention_dropout_in_training_drops_the_weights_it_returns():
    """In training mode the weights returned are those applied: each is 0 or the
    eval-mode weight / (1 - p), and the output is computed from exactly them."""
    attn.manual_seed(3)
    E, H, B, L, p = 8, 2, 2, 32, 0.5
    m = attn.MultiheadAttention(E, H, dropout=p, batch_first=True)
    assert m.training
    m.in_proj_bias = np.random.default_rng(1).standard_normal(3 * E) * 0.5  # non-zero biases
    m.out_proj.bias = np.random.default_rng(2).standard_normal(E) * 0.5
    x = np.random.default_rng(3).standard_normal((B, L, E), dtype=np.float32)
    out, w = m(x, x, x, average_attn_weights=False)
    _, w_eval = m.eval()(x, x, x, average_attn_weights=False)
    tol, tol_w = mha_budgets(E, H, L)

    kept = w != 0
    assert np.all(w_eval > 0)
    dropped = 1 - kept.mean()
    assert abs(dropped - p) <= 5 * math.sqrt(p * (1 - p) / kept.size), f"dropped {dropped:.3f}, p = {p}"
    assert relative_error(w[kept], w_eval[kept] / (1 - p)) <= tol_w

    x64 = x.astype(np.float64)
    W, b = m.in_proj_weight.astype(np.float64), m.in_proj_bias.astype(np.float64)
    v = (x64 @ W[2 * E:].T + b[2 * E:]).reshape(B, L, H, E // H).transpose(0, 2, 1, 3)
    heads = (w.astype(np.float64) @ v).transpose(0, 2, 1, 3).reshape(B, L, E)
    want = heads @ m.out_proj.weight.astype(np.float64).T + m.out_proj.bias
    assert relative_error(out, want) <= tol


def test_multihead_attention_is_a_module_like_torchs():
    attn.manual_seed(5)
    m = attn.MultiheadAttention(8, 2, kdim=6, vdim=4, add_bias_kv=True, batch_first=True)
    assert m.training and m.eval() is m and not m.training
    assert m.train() is m and m.training and m.train(False) is m and not m.training
    m.training = True
    assert m.training
    assert (m.embed_dim, m.kdim, m.vdim, m.num_heads, m.head_dim) == (8, 6, 4, 2, 4)
    assert (m.dropout, m.batch_first, m.add_zero_attn, m._qkv_same_embed_dim) == (0.0, True, False, False)
    assert m.in_proj_weight is None and m.q_proj_weight.shape == (8, 8)
    assert m.k_proj_weight.shape == (8, 6) and m.v_proj_weight.shape == (8, 4)
    assert m.bias_k.shape == (1, 1, 8) and m.bias_v.shape == (1, 1, 8)
    assert m.out_proj.weight.shape == (8, 8) and m.out_proj.bias.shape == (8,)
    assert "MultiheadAttention(embed_dim=8, num_heads=2" in repr(m)
    # torch's initialisation: xavier_uniform projections, zero biases
    packed = attn.MultiheadAttention(8, 2)
    bound = math.sqrt(6 / (8 + 24))
    assert np.abs(packed.in_proj_weight).max() <= bound and packed.in_proj_weight.std() > bound / 4
    assert np.all(packed.in_proj_bias == 0) and np.all(packed.out_proj.bias == 0)
    attn.manual_seed(5)
    again = attn.MultiheadAttention(8, 2, kdim=6, vdim=4, add_bias_kv=True, batch_first=True)
    assert np.array_equal(again.q_proj_weight, m.q_proj_weight), "manual_seed replays the initialisation"


def test_multihead_attention_parameters_are_views_of_the_module():
    m = attn.MultiheadAttention(8, 2).eval()
    x = np.random.default_rng(4).standard_normal((3, 2, 8), dtype=np.float32)
    before, _ = m(x, x, x)
    w = m.out_proj.weight
    assert np.shares_memory(w, m.state_dict()["out_proj.weight"])
    assert np.shares_memory(m.in_proj_weight, dict(m.named_parameters())["in_proj_weight"])
    assert [a.shape for a in m.parameters()] == [(24, 8), (24,), (8, 8), (8,)]
    w *= 2  # writing the view writes the module
    after, _ = m(x, x, x)
    assert relative_error(after, 2 * before) <= mha_budgets(8, 2, 3)[0]
    del m
    assert np.isfinite(w.sum()), "an array outlives its module"


def test_multihead_attention_errors_name_the_argument():
    m = attn.MultiheadAttention(8, 2)
    x = np.zeros((3, 2, 8), dtype=np.float32)
    with pytest.raises(TypeError, match=r"\[MultiheadAttention.forward\] query must be a float32 numpy array, got float64"):
        m(x.astype(np.float64), x, x)
    with pytest.raises(TypeError, match=r"key_padding_mask must be None, a bool array or a float32 array, got int32"):
        m(x, x, x, key_padding_mask=np.zeros((2, 3), dtype=np.int32))
    with pytest.raises(TypeError, match=r"attn_mask must be None, a bool array or a float32 array, got float64"):
        m(x, x, x, attn_mask=np.zeros((3, 3)))
    with pytest.raises(ValueError, match=r"key_padding_mask \(3, 2\) must be \(B, S\) = \(2, 3\)"):
        m(x, x, x, key_padding_mask=np.zeros((3, 2), dtype=bool))
    with pytest.raises(ValueError, match=r"attn_mask \(2, 3\) must be \(L, S\) = \(3, 3\) or \(B \* num_heads, L, S\)"):
        m(x, x, x, attn_mask=np.zeros((2, 3), dtype=bool))
    with pytest.raises(ValueError, match=r"key width must be kdim = 8"):
        m(x, x[..., :5], x)
    with pytest.raises(ValueError, match=r"num_heads 3 must divide"):
        attn.MultiheadAttention(8, 3)
    with pytest.raises(ValueError, match=r"dropout must be a probability"):
        attn.MultiheadAttention(8, 2, dropout=1.5)
    with pytest.raises(ValueError, match=r"in_proj_weight must have shape \(24, 8\), got \(8, 8\)"):
        m.in_proj_weight = np.zeros((8, 8))
    with pytest.raises(ValueError, match=r"q_proj_weight is None in this configuration"):
        m.q_proj_weight = np.zeros((8, 8))


# ---- d2l's modules -------------------------------------------------------------------------

def test_dot_product_attention_matches_d2l_on_its_example():
    """d2l's own example: queries (2, 1, 2), ten keys of ones, valid_lens [2, 6]."""
    queries = np.random.default_rng(0).normal(0, 1, (2, 1, 2)).astype(np.float32)
    keys = np.ones((2, 10, 2), dtype=np.float32)
    values = np.tile(np.arange(40, dtype=np.float32).reshape(1, 10, 4), (2, 1, 1))
    valid_lens = np.array([2, 6])
    attention = attn.DotProductAttention(dropout=0.5).eval()
    got = attention(queries, keys, values, valid_lens)
    d2l = D2lDotProductAttention(dropout=0.5).eval()
    want = d2l(*(torch.from_numpy(a).double() for a in (queries, keys, values)), torch.from_numpy(valid_lens))
    assert relative_error(got, want.numpy()) <= REFERENCE_BUDGET
    assert relative_error(attention.attention_weights, d2l.attention_weights.numpy()) <= REFERENCE_BUDGET


@pytest.mark.parametrize("lens", [None, [3, 0, 7], [[1, 2, 3, 4, 5], [7, 7, 0, 1, 2], [6, 5, 4, 3, 2]]],
                         ids=["no_lengths", "1d_with_zero", "2d"])
def test_d2l_modules_match_d2l(lens):
    gen = torch.Generator().manual_seed(11)
    B, Lq, Lk, dq, dk, dv, hidden = 3, 5, 7, 6, 4, 3, 8
    queries = torch.randn(B, Lq, dq, generator=gen)
    keys, values = torch.randn(B, Lk, dk, generator=gen), torch.randn(B, Lk, dv, generator=gen)
    valid = None if lens is None else torch.tensor(lens)
    numpy_lens = None if lens is None else np.array(lens)

    d2l = D2lAdditiveAttention(dk, dq, hidden, dropout=0.1).eval()
    with torch.no_grad():
        for p in d2l.parameters():
            p.copy_(torch.randn(p.shape, generator=gen))
    attention = attn.AdditiveAttention(key_size=dk, query_size=dq, num_hiddens=hidden, dropout=0.1).eval()
    attention.load_state_dict(numpy_state(d2l))
    got = attention(queries.numpy(), keys.numpy(), values.numpy(), numpy_lens)
    with torch.no_grad():
        want = d2l.double()(queries.double(), keys.double(), values.double(), valid)
    tol, tol_w = additive_budgets(dq, dk, hidden, Lk)
    assert relative_error(got, want.numpy()) <= tol
    assert relative_error(attention.attention_weights, d2l.attention_weights.numpy()) <= tol_w

    same_width_keys = torch.randn(B, Lk, dq, generator=gen)
    dot = attn.DotProductAttention(0.2).eval()
    got = dot(queries.numpy(), same_width_keys.numpy(), values.numpy(), numpy_lens)
    d2l_dot = D2lDotProductAttention(0.2).eval()
    want = d2l_dot(queries.double(), same_width_keys.double(), values.double(), valid)
    assert relative_error(got, want.numpy()) <= REFERENCE_BUDGET
    assert relative_error(dot.attention_weights, d2l_dot.attention_weights.numpy()) <= REFERENCE_BUDGET


def test_d2l_modules_in_training_keep_the_softmax_and_drop_what_they_apply():
    """d2l keeps the softmax as attention_weights and applies dropout after; with
    values = identity the output is the dropped weights."""
    attn.manual_seed(12)
    gen = np.random.default_rng(12)
    B, L, S, p = 4, 32, 32, 0.3
    q, k = gen.standard_normal((B, L, 8), dtype=np.float32), gen.standard_normal((B, S, 8), dtype=np.float32)
    v = np.broadcast_to(np.eye(S, dtype=np.float32), (B, S, S))
    for module in (attn.DotProductAttention(p), attn.AdditiveAttention(8, 8, 6, p)):
        assert module.training and module.dropout == p
        out = module(q, k, v)
        softmax = module.attention_weights
        kept = out != 0
        assert np.all(softmax > 0)
        dropped = 1 - kept.mean()
        assert abs(dropped - p) <= 5 * math.sqrt(p * (1 - p) / kept.size), f"dropped {dropped:.3f}, p = {p}"
        assert relative_error(out[kept], softmax[kept] / (1 - p)) <= 4 * REFERENCE_BUDGET
        assert np.allclose(softmax.sum(-1), 1, atol=1e-6)


def test_d2l_modules_errors_name_the_argument():
    x = np.zeros((2, 3, 4), dtype=np.float32)
    with pytest.raises(TypeError, match=r"\[DotProductAttention.forward\] keys must be a float32 numpy array"):
        attn.DotProductAttention(0.0)(x, x.astype(np.float16), x)
    with pytest.raises(TypeError, match=r"\[AdditiveAttention.forward\] valid_lens must hold integers"):
        attn.AdditiveAttention(4, 4, 5)(x, x, x, np.array([0.5, 1.0]))
    with pytest.raises(ValueError, match=r"dropout must be a probability"):
        attn.DotProductAttention(-0.1)
    assert attn.DotProductAttention(0.0).attention_weights is None


# ---- Linear --------------------------------------------------------------------------------

def test_linear_matches_torch():
    gen = torch.Generator().manual_seed(13)
    torch_linear = torch.nn.Linear(7, 5)
    with torch.no_grad():
        for p in torch_linear.parameters():
            p.copy_(torch.randn(p.shape, generator=gen))
    linear = attn.Linear(7, 5)
    linear.load_state_dict(numpy_state(torch_linear))
    x = torch.randn(3, 4, 7, generator=gen)
    got = linear(x.numpy())
    x64, w64, b64 = x.double(), torch_linear.weight.double(), torch_linear.bias.double()
    want = torch.nn.functional.linear(x64, w64, b64)
    terms = (x64.abs() @ w64.abs().T + b64.abs()).detach()
    condition = float(terms.norm() / want.norm())
    assert relative_error(got, want.detach().numpy()) <= float_sum_budget(7 + 1, condition=condition)
    assert (linear.in_features, linear.out_features) == (7, 5)
    assert attn.Linear(3, 2, bias=False).bias is None
    assert repr(attn.Linear(3, 2, bias=False)) == "Linear(in_features=3, out_features=2, bias=False)"
