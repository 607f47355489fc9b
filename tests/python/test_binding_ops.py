"""attn.scaled_dot_product_attention and attn.masked_softmax against torch.

torch 1.13 has no public scaled_dot_product_attention, so the oracle is its
formula in float64 torch ops (torch 2's documented reference implementation):
softmax(q k^T * scale + bias, masked) v, keys repeated for GQA. Where every key
of a row is masked the formula gives NaN; attn defines that row as zeros, and
the oracle says so explicitly. masked_softmax is held to d2l's code (d2l_code.py)
in float64.

Error budgets (tolerance.py): scaled_dot_product_attention runs the fused CPU
kernel, fused_attention_budget(E, S); masked_softmax runs the reference kernel
(double accumulation, one rounding), REFERENCE_BUDGET.
"""

import inspect
import math
import threading
import time
import zlib

import numpy as np
import pytest
import torch

from attn_module import attn
from d2l_code import masked_softmax as d2l_masked_softmax
from tolerance import REFERENCE_BUDGET, fused_attention_budget, relative_error


def sdpa_oracle(q, k, v, attn_mask=None, is_causal=False, scale=None, enable_gqa=False):
    """torch's reference formula in float64; rows with no allowed key are zeros."""
    q, k, v = (torch.from_numpy(np.ascontiguousarray(x)).double() for x in (q, k, v))
    L, S = q.shape[-2], k.shape[-2]
    scale = 1 / math.sqrt(q.shape[-1]) if scale is None else scale
    if enable_gqa:
        k = k.repeat_interleave(q.shape[-3] // k.shape[-3], -3)
        v = v.repeat_interleave(q.shape[-3] // v.shape[-3], -3)
    scores = q @ k.transpose(-2, -1) * scale
    allowed = torch.ones(L, S, dtype=torch.bool)
    if is_causal:
        allowed = allowed.tril()
    if attn_mask is not None:
        m = torch.from_numpy(np.ascontiguousarray(attn_mask))
        if m.dtype == torch.bool:
            allowed = allowed & m
        else:
            scores = scores + m.double()
    scores = scores.masked_fill(~allowed, float("-inf"))
    weights = torch.nan_to_num(torch.softmax(scores, dim=-1), nan=0.0)
    return (weights @ v).numpy()


def randn(gen, *shape):
    return gen.standard_normal(shape, dtype=np.float32)


def make_mask(gen, kind, shape):
    if kind == "bool":
        return gen.random(shape) > 0.3  # True takes part
    return randn(gen, *shape)


# (name, query, key, value shapes, attn_mask (kind, shape) or None, options)
SDPA_CASES = [
    ("2d", (5, 8), (7, 8), (7, 8), None, {}),
    ("3d", (3, 5, 16), (3, 9, 16), (3, 9, 16), None, {}),
    ("4d_value_width_differs", (2, 4, 9, 16), (2, 4, 13, 16), (2, 4, 13, 12), None, {}),
    ("5d", (2, 3, 2, 6, 8), (2, 3, 2, 7, 8), (2, 3, 2, 7, 8), None, {}),
    ("odd_lengths", (1, 2, 65, 32), (1, 2, 127, 32), (1, 2, 127, 32), None, {}),
    ("one_query_one_key", (2, 2, 1, 8), (2, 2, 1, 8), (2, 2, 1, 8), None, {}),
    ("scale", (2, 3, 6, 8), (2, 3, 6, 8), (2, 3, 6, 8), None, {"scale": 0.3}),
    ("dropout_p_zero", (2, 3, 6, 8), (2, 3, 6, 8), (2, 3, 6, 8), None, {"dropout_p": 0.0}),
    ("bool_mask_2d", (2, 3, 6, 8), (2, 3, 7, 8), (2, 3, 7, 8), ("bool", (6, 7)), {}),
    ("bool_mask_per_batch", (2, 3, 6, 8), (2, 3, 7, 8), (2, 3, 7, 8), ("bool", (2, 1, 6, 7)), {}),
    ("bool_mask_full", (2, 3, 6, 8), (2, 3, 7, 8), (2, 3, 7, 8), ("bool", (2, 3, 6, 7)), {}),
    ("bool_mask_keys_only", (2, 3, 6, 8), (2, 3, 7, 8), (2, 3, 7, 8), ("bool", (7,)), {}),
    ("float_mask_2d", (2, 3, 6, 8), (2, 3, 7, 8), (2, 3, 7, 8), ("float", (6, 7)), {}),
    ("float_mask_per_head", (2, 3, 6, 8), (2, 3, 7, 8), (2, 3, 7, 8), ("float", (3, 6, 7)), {}),
    ("float_mask_3d_input", (4, 6, 8), (4, 7, 8), (4, 7, 8), ("float", (4, 6, 7)), {}),
    ("mask_broadcast_inside_5d", (2, 3, 2, 6, 8), (2, 3, 2, 7, 8), (2, 3, 2, 7, 8),
     ("bool", (3, 1, 6, 7)), {}),
    ("causal_square", (2, 3, 7, 8), (2, 3, 7, 8), (2, 3, 7, 8), None, {"is_causal": True}),
    ("causal_more_keys", (2, 3, 5, 8), (2, 3, 9, 8), (2, 3, 9, 8), None, {"is_causal": True}),
    ("causal_more_queries", (2, 3, 9, 8), (2, 3, 5, 8), (2, 3, 5, 8), None, {"is_causal": True}),
    ("causal_odd_lengths", (1, 2, 65, 16), (1, 2, 127, 16), (1, 2, 127, 16), None, {"is_causal": True}),
    ("causal_and_bool", (2, 3, 7, 8), (2, 3, 7, 8), (2, 3, 7, 8), ("bool", (7, 7)), {"is_causal": True}),
    ("causal_and_float", (2, 3, 7, 8), (2, 3, 7, 8), (2, 3, 7, 8), ("float", (2, 3, 7, 7)),
     {"is_causal": True, "scale": 0.5}),
    ("gqa_2", (2, 4, 6, 8), (2, 2, 6, 8), (2, 2, 6, 8), None, {"enable_gqa": True}),
    ("gqa_4_causal", (2, 8, 6, 8), (2, 2, 9, 8), (2, 2, 9, 8), None, {"enable_gqa": True, "is_causal": True}),
    ("gqa_8_to_1_masked", (2, 8, 6, 8), (2, 1, 7, 8), (2, 1, 7, 12), ("bool", (2, 8, 6, 7)),
     {"enable_gqa": True}),
    ("gqa_3d", (6, 5, 8), (2, 5, 8), (2, 5, 8), ("float", (5, 5)), {"enable_gqa": True}),
    ("gqa_equal_heads", (2, 3, 6, 8), (2, 3, 6, 8), (2, 3, 6, 8), None, {"enable_gqa": True}),
    ("no_queries", (2, 0, 8), (2, 5, 8), (2, 5, 8), None, {}),
    ("no_keys", (2, 4, 8), (2, 0, 8), (2, 0, 8), None, {}),
]


@pytest.mark.parametrize("name,qs,ks,vs,mask,options", SDPA_CASES, ids=[c[0] for c in SDPA_CASES])
def test_sdpa_matches_the_formula(name, qs, ks, vs, mask, options):
    gen = np.random.default_rng(zlib.crc32(name.encode()))
    q, k, v = randn(gen, *qs), randn(gen, *ks), randn(gen, *vs)
    attn_mask = None if mask is None else make_mask(gen, *mask)
    got = attn.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, **options)
    oracle_options = {key: val for key, val in options.items() if key != "dropout_p"}
    want = sdpa_oracle(q, k, v, attn_mask, **oracle_options)
    assert got.dtype == np.float32 and got.shape == want.shape
    assert np.isfinite(got).all()
    err = relative_error(got, want)
    budget = fused_attention_budget(qs[-1], ks[-2])
    assert err <= budget, f"{name}: relative error {err:.3g} > {budget:.3g}"


def test_sdpa_positional_arguments_follow_torch():
    gen = np.random.default_rng(1)
    q, k, v = randn(gen, 2, 5, 8), randn(gen, 2, 6, 8), randn(gen, 2, 6, 8)
    mask = gen.random((5, 6)) > 0.5
    got = attn.scaled_dot_product_attention(q, k, v, mask, 0.0, True, scale=0.25)
    want = sdpa_oracle(q, k, v, mask, is_causal=True, scale=0.25)
    assert relative_error(got, want) <= fused_attention_budget(8, 6)
    with pytest.raises(TypeError):  # scale and enable_gqa are keyword-only, as in torch
        attn.scaled_dot_product_attention(q, k, v, mask, 0.0, True, 0.25)


def parameters(function):
    """(name, kind, default) of each parameter: a signature without the annotations."""
    return [(p.name, p.kind, p.default) for p in inspect.signature(function).parameters.values()]


def test_signatures_are_torchs_and_d2ls():
    # torch 1.13 has no scaled_dot_product_attention; this is torch 2's signature.
    def torch_sdpa(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, *, scale=None,
                   enable_gqa=False):
        pass

    assert parameters(attn.scaled_dot_product_attention) == parameters(torch_sdpa)
    assert [p[0] for p in parameters(attn.masked_softmax)] == [p[0] for p in parameters(d2l_masked_softmax)]


def test_sdpa_fully_masked_rows_are_zero_not_nan():
    gen = np.random.default_rng(2)
    q, k, v = randn(gen, 2, 2, 4, 8), randn(gen, 2, 2, 5, 8), randn(gen, 2, 2, 5, 8)
    keep = np.ones((2, 2, 4, 5), dtype=bool)
    keep[0, 1, 2, :] = False                       # one row of batch 0, head 1
    bias = np.zeros((4, 5), dtype=np.float32)
    bias[3, :] = -np.inf                           # the last query of every head
    for mask in (keep, bias):
        got = attn.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        assert not np.isnan(got).any()
        rows = got[0, 1, 2] if mask is keep else got[..., 3, :]
        assert np.all(rows == 0)
        assert relative_error(got, sdpa_oracle(q, k, v, mask)) <= fused_attention_budget(8, 5)


def test_sdpa_reads_strided_broadcast_and_misaligned_arrays_in_place():
    gen = np.random.default_rng(3)
    B, L, H, E = 2, 6, 3, 8
    q_blhe = randn(gen, B, L, H, E)
    q = q_blhe.transpose(0, 2, 1, 3)                      # the head split, a view
    k = randn(gen, B, H, 2 * L, E)[:, :, ::-1, :][:, :, ::2, :]  # negative, then doubled strides
    v = np.broadcast_to(randn(gen, 1, 1, L, E), (B, H, L, E))   # stride 0, read-only
    raw = np.frombuffer(bytearray(4 * L * L + 1), dtype=np.uint8, count=4 * L * L, offset=1)
    mask = raw.view(np.float32).reshape(L, L)              # a misaligned buffer
    mask[...] = randn(gen, L, L)
    assert not q.flags.c_contiguous and not v.flags.writeable and mask.ctypes.data % 4 != 0
    got = attn.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    want = sdpa_oracle(q, k, v, mask)
    assert relative_error(got, want) <= fused_attention_budget(E, L)
    assert got.flags.c_contiguous and got.shape == (B, H, L, E)


def test_sdpa_dropout_keeps_each_weight_with_probability_one_minus_p():
    """With value = identity the output is the weight matrix after dropout: every
    entry is either 0 (dropped) or the softmax weight / (1 - p) (kept)."""
    gen = np.random.default_rng(4)
    B, H, L, S, E, p = 4, 4, 64, 64, 16, 0.25
    q, k = randn(gen, B, H, L, E), randn(gen, B, H, S, E)
    v = np.broadcast_to(np.eye(S, dtype=np.float32), (B, H, S, S))
    weights = sdpa_oracle(q, k, v)                          # the softmax, no dropout
    attn.manual_seed(11)
    got = attn.scaled_dot_product_attention(q, k, v, dropout_p=p)
    assert got.shape == (B, H, L, S)
    kept = got != 0
    assert np.all(weights > 0)  # so a zero means dropped
    n = kept.size
    dropped = 1 - kept.mean()
    assert abs(dropped - p) <= 5 * math.sqrt(p * (1 - p) / n), f"dropped fraction {dropped:.4f}, p = {p}"
    assert relative_error(got[kept], weights[kept] / (1 - p)) <= fused_attention_budget(E, S)

    again = attn.scaled_dot_product_attention(q, k, v, dropout_p=p)
    assert not np.array_equal(again != 0, kept), "each call draws a new dropout pattern"
    attn.manual_seed(11)
    assert np.array_equal(attn.scaled_dot_product_attention(q, k, v, dropout_p=p), got), \
        "manual_seed replays the same pattern"
    assert np.all(attn.scaled_dot_product_attention(q, k, v, dropout_p=1.0) == 0)


def test_sdpa_releases_the_gil_while_it_computes():
    """Another Python thread runs during a long call: with the GIL held, no stamp
    could fall in the middle of it."""
    gen = np.random.default_rng(5)
    stamps, stop = [], threading.Event()

    def ticker():
        while not stop.is_set():
            stamps.append(time.perf_counter())
            time.sleep(0.001)

    thread = threading.Thread(target=ticker)
    thread.start()
    try:
        for heads in (4, 8, 16, 32, 64):  # until one call lasts long enough to tell
            q = randn(gen, 1, heads, 2048, 64)
            t0 = time.perf_counter()
            attn.scaled_dot_product_attention(q, q, q)
            t1 = time.perf_counter()
            if t1 - t0 > 0.1:
                break
    finally:
        stop.set()
        thread.join()
    if t1 - t0 <= 0.1:
        pytest.skip("this machine computes too fast for the test to tell")
    margin = max(0.1 * (t1 - t0), 0.02)
    assert any(t0 + margin < s < t1 - margin for s in stamps)


# ---- masked_softmax ------------------------------------------------------------------------

MASKED_SOFTMAX_CASES = [
    ("no_lengths", (2, 3, 5), None),
    ("d2l_1d", (2, 2, 4), [2, 3]),
    ("d2l_2d", (2, 2, 4), [[1, 3], [2, 4]]),
    ("zero_lengths_are_uniform", (3, 2, 6), [0, 6, 1]),
    ("per_row_zero", (2, 3, 5), [[0, 2, 5], [5, 0, 1]]),
    ("wide_rows", (2, 4, 129), [128, 3]),
]


@pytest.mark.parametrize("name,shape,lens", MASKED_SOFTMAX_CASES, ids=[c[0] for c in MASKED_SOFTMAX_CASES])
def test_masked_softmax_matches_d2l(name, shape, lens):
    gen = np.random.default_rng(zlib.crc32(name.encode()))
    x = randn(gen, *shape)
    valid = None if lens is None else np.array(lens)
    got = attn.masked_softmax(x, valid)
    want = d2l_masked_softmax(torch.from_numpy(x).double(), None if lens is None else torch.tensor(lens))
    assert got.dtype == np.float32 and got.shape == x.shape
    assert relative_error(got, want.numpy()) <= REFERENCE_BUDGET
    if lens is not None:  # a list is as good as an array
        assert np.array_equal(attn.masked_softmax(x, lens), got)


def test_masked_softmax_takes_any_integer_dtype_and_one_length_per_row():
    x = np.random.default_rng(6).standard_normal((4, 5), dtype=np.float32)
    lens = np.array([1, 5, 0, 3], dtype=np.uint8)
    got = attn.masked_softmax(x, lens)
    x64 = x.astype(np.float64)
    for row, n in enumerate(lens):
        want = np.full(5, 0.2) if n == 0 else np.r_[np.exp(x64[row, :n] - x64[row, :n].max()), np.zeros(5 - n)]
        np.testing.assert_allclose(got[row], want / want.sum(), rtol=REFERENCE_BUDGET, atol=1e-7)


# ---- errors name the argument --------------------------------------------------------------

def sdpa_error(kind, **overrides):
    gen = np.random.default_rng(7)
    args = dict(query=randn(gen, 2, 3, 4, 8), key=randn(gen, 2, 3, 5, 8), value=randn(gen, 2, 3, 5, 8))
    args.update(overrides)
    with pytest.raises(kind) as info:
        attn.scaled_dot_product_attention(**args)
    return str(info.value)


def test_sdpa_wrong_dtypes_are_type_errors_naming_the_argument():
    q64 = np.zeros((2, 3, 4, 8))
    assert "query must be a float32 numpy array, got float64" in sdpa_error(TypeError, query=q64)
    assert "key must be a float32 numpy array, got list" in sdpa_error(TypeError, key=[[1.0]])
    assert "value" in sdpa_error(TypeError, value=torch.zeros(2, 3, 5, 8))
    int_mask = np.ones((4, 5), dtype=np.int64)
    assert "attn_mask must be None, a bool array or a float32 array, got int64" in \
        sdpa_error(TypeError, attn_mask=int_mask)
    assert "attn_mask" in sdpa_error(TypeError, attn_mask=np.ones((4, 5)))  # float64


def test_sdpa_wrong_shapes_are_value_errors_naming_the_argument():
    gen = np.random.default_rng(8)
    cases = {
        "key must have query's embedding size E = 8": dict(key=randn(gen, 2, 3, 5, 4)),
        "value must have key's length S = 5": dict(value=randn(gen, 2, 3, 6, 8)),
        "key must have query's batch dims (2)": dict(key=randn(gen, 3, 3, 5, 8), value=randn(gen, 3, 3, 5, 8)),
        "enable_gqa=True": dict(key=randn(gen, 2, 1, 5, 8), value=randn(gen, 2, 1, 5, 8)),
        "same number of dims": dict(key=randn(gen, 3, 5, 8)),
        "attn_mask (4, 6) must broadcast to the attention weights' shape (..., L, S) = (2, 3, 4, 5)":
            dict(attn_mask=np.ones((4, 6), dtype=bool)),
        "attn_mask (1, 2, 3, 4, 5)": dict(attn_mask=np.ones((1, 2, 3, 4, 5), dtype=bool)),
        "dropout_p must be a probability in [0, 1]": dict(dropout_p=1.5),
        "scale must be finite": dict(scale=float("inf")),
    }
    for expected, overrides in cases.items():
        message = sdpa_error(ValueError, **overrides)
        assert expected in message and "[scaled_dot_product_attention]" in message, message
    q, k = randn(gen, 2, 6, 4, 8), randn(gen, 2, 4, 5, 8)
    assert "query heads (6) must be a multiple of key/value heads (4)" in \
        sdpa_error(ValueError, query=q, key=k, value=k, enable_gqa=True)


def test_attn_error_is_a_value_error_and_a_runtime_error():
    assert issubclass(attn.Error, ValueError) and issubclass(attn.Error, RuntimeError)
    with pytest.raises(attn.Error):
        attn.masked_softmax(np.zeros((2, 3), dtype=np.float32), [4, 1])


def test_masked_softmax_errors_name_the_argument():
    x = np.zeros((2, 3, 4), dtype=np.float32)
    with pytest.raises(TypeError, match=r"\[masked_softmax\] X must be a float32 numpy array, got float64"):
        attn.masked_softmax(x.astype(np.float64), None)
    with pytest.raises(TypeError, match=r"valid_lens must hold integers, got float64"):
        attn.masked_softmax(x, np.array([1.0, 2.0]))
    with pytest.raises(TypeError, match=r"valid_lens must be an integer numpy array or a sequence of ints, got str"):
        attn.masked_softmax(x, "12")
    with pytest.raises(ValueError, match=r"valid_lens \(3\) must be \(2\) or \(2, 3\)"):
        attn.masked_softmax(x, [1, 2, 3])
    with pytest.raises(ValueError, match=r"valid_lens \(2\) holds 5, outside \[0, 4\]"):
        attn.masked_softmax(x, [1, 5])


def test_set_num_threads_changes_the_threads_not_the_bits():
    gen = np.random.default_rng(17)
    # 8 heads of 600 queries: several tasks per thread, so that two threads share them.
    q, k, v = randn(gen, 1, 8, 600, 64), randn(gen, 1, 8, 700, 64), randn(gen, 1, 8, 700, 64)
    saved = attn.get_num_threads()
    try:
        outputs = {}
        for n in (1, 2):
            attn.set_num_threads(n)
            assert attn.get_num_threads() == n
            outputs[n] = attn.scaled_dot_product_attention(q, k, v, is_causal=True)
        assert np.array_equal(outputs[1], outputs[2])
        assert relative_error(outputs[1], sdpa_oracle(q, k, v, is_causal=True)) <= fused_attention_budget(64, 700)
        with pytest.raises(attn.Error, match=r"\[set_num_threads\] n must be at least 1, got 0"):
            attn.set_num_threads(0)
        assert attn.get_num_threads() == 2
        attn.set_num_threads(1)
        seen = []
        other = threading.Thread(target=lambda: seen.append(attn.get_num_threads()))
        other.start()
        other.join()
        assert seen == [1], "one count for the process, as torch's"
    finally:
        attn.set_num_threads(saved)
