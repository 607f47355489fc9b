"""attn::MultiHeadAttention against torch.nn.MultiheadAttention, option by option.

Each case builds a torch module with random parameters, runs it in float64 on
float32 inputs, and runs the same parameters and inputs through attn (the
`mha_case` program, which reads one case as JSON). Outputs and weights are
compared norm-wise against the float64 result.

Error budgets (tolerance.py, the rule of tests/tolerance.hpp): mha_budgets counts
the reductions that the C++ MultiHeadAttention tests count. The output's chain is
the in-projection over the widest input (E, kdim or vdim), the head dim E / H
(scores), the S' keys twice (softmax sum and weighted sum; S' = S plus one key for
add_bias_kv and one for add_zero_attn) and the out-projection over E, so its
norm-wise relative error is within 16 * (max(E, kdim, vdim) + E / H + 2 S' + E + 4)
* eps_f32 / 2; the weights' chain is the in-projection, the head dim, S' and the
average over the H heads.
"""

import json
import os
import subprocess
import tempfile
import zlib

import numpy as np
import pytest
import torch

from tolerance import mha_budgets, relative_error


def tensor_json(t, dtype="float32"):
    t = t.detach()
    data = t.to(torch.int64 if dtype == "bool" else torch.float32).reshape(-1).tolist()
    return {"shape": list(t.shape), "data": data, "dtype": dtype}


def run_attn(case):
    binary = os.environ.get("MHA_CASE_BIN")
    assert binary, "MHA_CASE_BIN must name the mha_case program (set by CTest)"
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(case, f)
        path = f.name
    try:
        done = subprocess.run([binary, path], capture_output=True, text=True, check=False)
    finally:
        os.unlink(path)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    return {k: np.array(v["data"], dtype=np.float64).reshape(v["shape"]) for k, v in out.items()}


# (name, constructor options, L, S, B, masks, forward flags)
CASES = [
    ("packed", dict(embed_dim=8, num_heads=2), 5, 5, 3, {}, {}),
    ("batch_first", dict(embed_dim=8, num_heads=4, batch_first=True), 4, 6, 2, {}, {}),
    ("no_bias", dict(embed_dim=6, num_heads=3, bias=False), 4, 4, 2, {}, {}),
    ("kdim_vdim", dict(embed_dim=8, num_heads=2, kdim=5, vdim=3), 4, 7, 2, {}, {}),
    ("add_bias_kv", dict(embed_dim=8, num_heads=2, add_bias_kv=True), 4, 5, 2, {"kpm": "bool"}, {}),
    ("add_zero_attn", dict(embed_dim=8, num_heads=2, add_zero_attn=True), 4, 5, 2, {"attn": "bool2"}, {}),
    ("bias_kv_and_zero_attn", dict(embed_dim=8, num_heads=2, add_bias_kv=True, add_zero_attn=True),
     3, 4, 2, {"kpm": "bool", "attn": "float3"}, {}),
    # A float key_padding_mask together with a float attn_mask is left out: torch 1.13
    # treats the float padding mask as boolean there (masked_fill), while torch 2 and
    # attn add both.
    ("kpm_bool", dict(embed_dim=8, num_heads=2), 5, 6, 3, {"kpm": "bool"}, {}),
    ("kpm_float", dict(embed_dim=8, num_heads=2), 5, 6, 3, {"kpm": "float"}, {}),
    ("attn_mask_bool_2d", dict(embed_dim=8, num_heads=2), 5, 6, 3, {"attn": "bool2"}, {}),
    ("attn_mask_bool_3d", dict(embed_dim=8, num_heads=2), 5, 6, 3, {"attn": "bool3"}, {}),
    ("attn_mask_float_2d", dict(embed_dim=8, num_heads=2), 5, 6, 3, {"attn": "float2"}, {}),
    ("attn_mask_float_3d", dict(embed_dim=8, num_heads=4, batch_first=True), 5, 6, 2,
     {"attn": "float3", "kpm": "bool"}, {}),
    ("per_head_weights", dict(embed_dim=8, num_heads=2), 4, 5, 2, {}, {"average_attn_weights": False}),
    ("no_weights", dict(embed_dim=8, num_heads=2), 4, 5, 2, {}, {"need_weights": False}),
    ("is_causal", dict(embed_dim=8, num_heads=2), 6, 6, 2, {}, {"is_causal": True}),
    ("unbatched", dict(embed_dim=8, num_heads=2), 4, 5, None, {"kpm": "bool"}, {}),
]


def make_mask(kind, B, H, L, S, gen):
    """A random mask of `kind` that never blocks key 0, so no torch row is all masked."""
    if kind is None:
        return None
    if kind.startswith("bool"):
        shape = {"bool2": (L, S), "bool3": (B * H, L, S)}[kind]
        m = torch.rand(shape, generator=gen) < 0.4
        m[..., 0] = False
        return m
    shape = {"float2": (L, S), "float3": (B * H, L, S)}[kind]
    return torch.randn(shape, generator=gen, dtype=torch.float32)


@pytest.mark.parametrize("name,options,L,S,B,masks,flags", CASES, ids=[c[0] for c in CASES])
def test_multi_head_attention_matches_torch(name, options, L, S, B, masks, flags):
    seed = zlib.crc32(name.encode())
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    module = torch.nn.MultiheadAttention(**options)
    with torch.no_grad():  # non-zero biases, so that they are checked too
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.5)
    module.eval()
    E, H = options["embed_dim"], options["num_heads"]
    kdim, vdim = options.get("kdim", E), options.get("vdim", E)
    batch_first = options.get("batch_first", False)
    Bn = B or 1

    def seq(length, width):
        if B is None:
            return torch.randn(length, width, generator=gen)
        return torch.randn((B, length, width) if batch_first else (length, B, width), generator=gen)

    query, key, value = seq(L, E), seq(S, kdim), seq(S, vdim)
    kpm = None
    if masks.get("kpm") == "bool":
        kpm = torch.rand((Bn, S), generator=gen) < 0.4
        kpm[:, 0] = False
    elif masks.get("kpm") == "float":
        kpm = torch.randn((Bn, S), generator=gen)
    if kpm is not None and B is None:
        kpm = kpm[0]
    attn_mask = make_mask(masks.get("attn"), Bn, H, L, S, gen)
    need_weights = flags.get("need_weights", True)
    average = flags.get("average_attn_weights", True)
    is_causal = flags.get("is_causal", False)

    # torch 1.13 has no is_causal: the same mask, spelled out.
    torch_mask = torch.triu(torch.ones(L, S, dtype=torch.bool), 1) if is_causal else attn_mask
    m64 = module.double()
    with torch.no_grad():
        want_out, want_w = m64(query.double(), key.double(), value.double(),
                               key_padding_mask=kpm.double() if kpm is not None and kpm.is_floating_point() else kpm,
                               need_weights=need_weights,
                               attn_mask=torch_mask.double() if torch_mask is not None and torch_mask.is_floating_point() else torch_mask,
                               average_attn_weights=average)

    case = {
        "options": {
            "embed_dim": E, "num_heads": H, "bias": options.get("bias", True),
            "add_bias_kv": options.get("add_bias_kv", False),
            "add_zero_attn": options.get("add_zero_attn", False),
            "kdim": options.get("kdim"), "vdim": options.get("vdim"), "batch_first": batch_first,
        },
        "params": {n: tensor_json(p.float()) for n, p in module.state_dict().items()},
        "query": tensor_json(query), "key": tensor_json(key), "value": tensor_json(value),
        "key_padding_mask": None if kpm is None else tensor_json(kpm, "bool" if kpm.dtype == torch.bool else "float32"),
        "attn_mask": None if attn_mask is None else tensor_json(attn_mask, "bool" if attn_mask.dtype == torch.bool else "float32"),
        "need_weights": need_weights, "average_attn_weights": average, "is_causal": is_causal,
    }
    got = run_attn(case)

    tol, tol_w = mha_budgets(E, H, S, kdim=options.get("kdim"), vdim=options.get("vdim"),
                             add_bias_kv=options.get("add_bias_kv", False),
                             add_zero_attn=options.get("add_zero_attn", False))
    err = relative_error(got["output"], want_out.numpy())
    assert err <= tol, f"{name}: output relative error {err:.3g} > {tol:.3g}"
    if need_weights:
        err_w = relative_error(got["weights"], want_w.numpy())
        assert err_w <= tol_w, f"{name}: weights relative error {err_w:.3g} > {tol_w:.3g}"
    else:
        assert "weights" not in got


def test_fully_masked_rows_are_zero_not_nan():
    """Where torch gives NaN for a row with every key masked, attn gives out_proj.bias."""
    gen = torch.Generator().manual_seed(7)
    module = torch.nn.MultiheadAttention(8, 2)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=gen))
    x = torch.randn(4, 2, 8, generator=gen)
    kpm = torch.zeros(2, 4, dtype=torch.bool)
    kpm[1, :] = True  # batch 1 sees no key at all
    case = {
        "options": {"embed_dim": 8, "num_heads": 2, "bias": True, "add_bias_kv": False,
                    "add_zero_attn": False, "kdim": None, "vdim": None, "batch_first": False},
        "params": {n: tensor_json(p) for n, p in module.state_dict().items()},
        "query": tensor_json(x), "key": tensor_json(x), "value": tensor_json(x),
        "key_padding_mask": tensor_json(kpm, "bool"), "attn_mask": None,
        "need_weights": True, "average_attn_weights": True, "is_causal": False,
    }
    got = run_attn(case)
    assert np.all(np.isfinite(got["output"])) and np.all(np.isfinite(got["weights"]))
    bias = module.out_proj.bias.detach().numpy()
    np.testing.assert_allclose(got["output"][:, 1, :], np.broadcast_to(bias, (4, 8)), rtol=0, atol=0)
    assert np.all(got["weights"][1] == 0)
    with torch.no_grad():
        want, _ = module.double()(x.double(), x.double(), x.double(), key_padding_mask=kpm)
    assert torch.isnan(want[:, 1]).all()  # what attn improves on
    assert relative_error(got["output"][:, 0], want[:, 0].numpy()) <= mha_budgets(8, 2, 4)[0]
