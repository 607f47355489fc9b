"""state_dict() and load_state_dict() against torch's: the same names in the same
order, the same strict-loading errors, the same (missing_keys, unexpected_keys)."""

import re

import numpy as np
import pytest
import torch

from attn_module import attn

CONFIGS = [
    dict(embed_dim=8, num_heads=2),
    dict(embed_dim=8, num_heads=2, bias=False),
    dict(embed_dim=8, num_heads=2, kdim=5, vdim=3),
    dict(embed_dim=8, num_heads=4, add_bias_kv=True, add_zero_attn=True, batch_first=True),
    dict(embed_dim=6, num_heads=3, kdim=6, vdim=4, bias=False, add_bias_kv=True),
]


def numpy_state(module):
    return {name: t.detach().numpy() for name, t in module.state_dict().items()}


@pytest.mark.parametrize("options", CONFIGS, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()))
def test_state_dict_has_torchs_names_shapes_and_order(options):
    torch_state = torch.nn.MultiheadAttention(**options).state_dict()
    m = attn.MultiheadAttention(**options)
    state = m.state_dict()
    assert list(state) == list(torch_state)
    assert [name for name, _ in m.named_parameters()] == list(torch_state)
    for name, array in state.items():
        assert array.shape == tuple(torch_state[name].shape) and array.dtype == np.float32, name


@pytest.mark.parametrize("options", CONFIGS, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()))
def test_load_state_dict_copies_torchs_parameters(options):
    torch_module = torch.nn.MultiheadAttention(**options)
    m = attn.MultiheadAttention(**options)
    result = m.load_state_dict(numpy_state(torch_module))
    assert result.missing_keys == [] and result.unexpected_keys == []
    for name, array in m.state_dict().items():
        assert np.array_equal(array, torch_module.state_dict()[name].numpy()), name
    # the arrays were copied, not kept: the module owns its parameters
    source = numpy_state(torch_module)
    m.load_state_dict(source)
    source["out_proj.weight"] += 1
    assert not np.array_equal(m.out_proj.weight, source["out_proj.weight"])


def torch_error(module, state, strict=True):
    with pytest.raises(RuntimeError) as info:
        module.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in state.items()}, strict=strict)
    # torch prints shapes as torch.Size([3, 8]), attn as (3, 8)
    return re.sub(r"torch\.Size\(\[([^\]]*)\]\)", r"(\1)", str(info.value))


def test_strict_errors_read_as_torchs():
    options = dict(embed_dim=8, num_heads=2)
    torch_module = torch.nn.MultiheadAttention(**options)
    m = attn.MultiheadAttention(**options)
    state = numpy_state(torch_module)
    del state["in_proj_bias"], state["out_proj.bias"]
    state["bias_k"] = np.zeros((1, 1, 8), dtype=np.float32)
    state["in_proj_weight"] = np.zeros((3, 8), dtype=np.float32)
    before = m.state_dict()["out_proj.weight"].copy()
    with pytest.raises(attn.Error) as info:
        m.load_state_dict(state)
    message = str(info.value)
    assert message == torch_error(torch_module, state)
    assert message.startswith("Error(s) in loading state_dict for MultiheadAttention:\n\t"
                              "Missing key(s) in state_dict: \"in_proj_bias\", \"out_proj.bias\". ")
    assert "size mismatch for in_proj_weight: copying a param with shape (3, 8) from checkpoint" in message
    assert isinstance(info.value, ValueError) and isinstance(info.value, RuntimeError)
    assert np.array_equal(m.out_proj.weight, before), "nothing is loaded when anything is wrong"


def test_non_strict_loading_reports_the_keys_and_loads_the_rest():
    options = dict(embed_dim=8, num_heads=2)
    torch_module = torch.nn.MultiheadAttention(**options)
    m = attn.MultiheadAttention(**options)
    state = numpy_state(torch_module)
    del state["out_proj.bias"]
    state["extra"] = np.zeros(3, dtype=np.float32)
    got = m.load_state_dict(state, strict=False)
    want = torch_module.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()}, strict=False)
    assert (got.missing_keys, got.unexpected_keys) == (want.missing_keys, want.unexpected_keys)
    assert np.array_equal(m.out_proj.weight, state["out_proj.weight"])
    # a shape mismatch is an error even when not strict, as in torch
    state["out_proj.weight"] = np.zeros((2, 2), dtype=np.float32)
    with pytest.raises(attn.Error, match="size mismatch for out_proj.weight"):
        m.load_state_dict(state, strict=False)


def test_load_state_dict_converts_real_dtypes_and_refuses_the_rest():
    m = attn.Linear(3, 2)
    m.load_state_dict({"weight": np.arange(6, dtype=np.float64).reshape(2, 3), "bias": [1, 2]})
    assert m.weight.dtype == np.float32 and np.array_equal(m.weight, np.arange(6).reshape(2, 3))
    assert np.array_equal(m.bias, [1, 2])
    with pytest.raises(TypeError, match=r"\[load_state_dict\] bias must be an array of real numbers, got list"):
        m.load_state_dict({"weight": np.zeros((2, 3)), "bias": ["a", "b"]})
    with pytest.raises(TypeError, match=r"state_dict must be a mapping of names to arrays, got list"):
        m.load_state_dict([("weight", np.zeros((2, 3)))])


def test_additive_attention_state_dict_has_d2ls_names():
    m = attn.AdditiveAttention(key_size=4, query_size=6, num_hiddens=5)
    assert {name: a.shape for name, a in m.state_dict().items()} == \
        {"W_q.weight": (5, 6), "W_k.weight": (5, 4), "w_v.weight": (1, 5)}
    assert np.shares_memory(m.W_q.weight, m.state_dict()["W_q.weight"])
