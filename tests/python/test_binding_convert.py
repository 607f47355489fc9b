"""numpy arrays in and out of attn: which arrays are taken, that inputs are read in
place and never written or leaked, and that outputs own their memory."""

import gc
import sys

import numpy as np
import pytest

from attn_module import attn


def qkv(seed=0, shape=(2, 3, 5, 8)):
    gen = np.random.default_rng(seed)
    return tuple(gen.standard_normal(shape, dtype=np.float32) for _ in range(3))


def test_inputs_are_read_in_place_and_released_after_the_call():
    q, k, v = qkv()
    mask = np.ones((5, 5), dtype=bool)
    before = [sys.getrefcount(a) for a in (q, k, v, mask)]
    copies = [a.copy() for a in (q, k, v, mask)]
    for _ in range(3):
        attn.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    assert [sys.getrefcount(a) for a in (q, k, v, mask)] == before, "no reference to an input is kept"
    for a, c in zip((q, k, v, mask), copies):
        assert np.array_equal(a, c), "inputs are never written"


def test_read_only_inputs_are_accepted():
    q, k, v = qkv()
    for a in (q, k, v):
        a.flags.writeable = False
    out = attn.scaled_dot_product_attention(q, k, v)
    assert out.flags.writeable and out.flags.c_contiguous and out.dtype == np.float32


def test_outputs_own_their_memory():
    q, k, v = qkv()
    out = attn.scaled_dot_product_attention(q, k, v)
    want = out.copy()
    del q, k, v
    gc.collect()
    assert not np.shares_memory(out, want) and np.array_equal(out, want)
    assert out.base is not None and not isinstance(out.base, np.ndarray), "a view of attn's storage"


def test_only_native_float32_arrays_are_taken():
    q, k, v = qkv()
    for bad, name in [(q.astype(">f4"), ">f4"), (q.astype(np.float16), "float16"),
                      (q.astype(np.int32), "int32"), (q.tolist(), "list"), (3.0, "float")]:
        with pytest.raises(TypeError, match=rf"query must be a float32 numpy array, got {name}"):
            attn.scaled_dot_product_attention(bad, k, v)


def test_zero_dim_and_empty_arrays():
    with pytest.raises(ValueError, match=r"\[masked_softmax\] X must have at least 1 dim"):
        attn.masked_softmax(np.ones((), dtype=np.float32), None)
    empty = np.zeros((0, 4), dtype=np.float32)
    assert attn.masked_softmax(empty, None).shape == (0, 4)
    assert attn.masked_softmax(empty, []).shape == (0, 4), "an empty list is zero lengths"
    with pytest.raises(ValueError, match=r"valid_lens \(0\) must be \(2\) or \(2\)"):
        attn.masked_softmax(np.zeros((2, 3), dtype=np.float32), [])
