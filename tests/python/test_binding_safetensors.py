"""attn.safetensors and MultiheadAttention.load_state_dict from Python: a
torch-trained nn.MultiheadAttention, saved by the tests' own writer
(safetensors_spec.py), loaded by attn.safetensors.load_file, gives torch's outputs;
what attn saves, the tests' reader gets back bit for bit."""

import numpy as np
import pytest
import torch
from torch import nn

from attn_module import attn
from safetensors_spec import read_safetensors, write_safetensors
from tolerance import mha_budgets, relative_error

OPTIONS = [
    dict(),
    dict(bias=False),
    dict(add_bias_kv=True, add_zero_attn=True),
    dict(kdim=12, vdim=20, batch_first=True),
]


def torch_trained(E, H, options, steps=10):
    """nn.MultiheadAttention after a few Adam steps on a random regression."""
    torch.manual_seed(5)
    module = nn.MultiheadAttention(E, H, **options)
    adam = torch.optim.Adam(module.parameters(), lr=1e-2)
    shape = (6, 3) if options.get("batch_first") else (3, 6)
    q = torch.randn(*shape, E)
    k = torch.randn(*shape, options.get("kdim") or E)
    v = torch.randn(*shape, options.get("vdim") or E)
    target = torch.randn(*shape, E)
    for _ in range(steps):
        adam.zero_grad()
        ((module(q, k, v)[0] - target) ** 2).mean().backward()
        adam.step()
    return module.eval(), (q, k, v)


@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: ",".join(o) or "defaults")
def test_torch_trained_weights_give_torchs_outputs(tmp_path, options):
    E, H = 16, 4
    module, (q, k, v) = torch_trained(E, H, options)
    path = tmp_path / "mha.safetensors"
    write_safetensors(path, module.state_dict(), {"format": "pt"})

    state = attn.safetensors.load_file(str(path))
    assert list(state) == list(module.state_dict())  # the file's order
    assert attn.safetensors.load_metadata(str(path)) == {"format": "pt"}
    mine = attn.MultiheadAttention(E, H, **options)
    mine.load_state_dict(state)
    mine.eval()
    got_out, got_w = mine(q.numpy(), k.numpy(), v.numpy())

    double = nn.MultiheadAttention(E, H, **options).double().eval()
    double.load_state_dict({name: t.double() for name, t in module.state_dict().items()})
    with torch.no_grad():
        want_out, want_w = double(q.double(), k.double(), v.double())
    S = q.shape[1] if options.get("batch_first") else q.shape[0]
    out_budget, w_budget = mha_budgets(E, H, S, options.get("kdim"), options.get("vdim"),
                                       options.get("add_bias_kv", False), options.get("add_zero_attn", False))
    assert relative_error(got_out, want_out.numpy()) <= out_budget
    assert relative_error(got_w, want_w.numpy()) <= w_budget


def test_saved_files_read_back_bit_for_bit(tmp_path):
    rng = np.random.default_rng(3)
    tensors = {"b.weight": rng.standard_normal((3, 5)).astype(np.float32),
               "a": np.arange(4, dtype=np.float64),  # converted to float32, as documented
               "scalar": np.float32(2.5)}
    path = tmp_path / "out.safetensors"
    attn.safetensors.save_file(tensors, str(path), metadata={"who": "test"})
    back, metadata = read_safetensors(path)
    assert metadata == {"who": "test"}
    assert set(back) == set(tensors)
    for name, array in tensors.items():
        np.testing.assert_array_equal(back[name].numpy(), np.asarray(array, dtype=np.float32))
    again = attn.safetensors.load_file(str(path))
    np.testing.assert_array_equal(again["b.weight"], tensors["b.weight"])


def test_bad_files_and_arguments(tmp_path):
    path = tmp_path / "bad.safetensors"
    path.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}      ")
    with pytest.raises(attn.Error, match="bad.safetensors"):
        attn.safetensors.load_file(str(path))
    with pytest.raises(attn.Error, match="missing.safetensors"):
        attn.safetensors.load_file(str(tmp_path / "missing.safetensors"))
    with pytest.raises(TypeError, match="keys must be str"):
        attn.safetensors.save_file({1: np.zeros(2, np.float32)}, str(tmp_path / "x.safetensors"))
    from attn.safetensors import load_file  # the submodule imports as a module too
    assert load_file is attn.safetensors.load_file
