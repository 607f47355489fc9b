"""attn's backward against torch autograd: nn.MultiheadAttention option by option,
and the scaled dot-product attention formula with masks, biases and GQA.

Each case draws inputs, parameters and the output gradient on the grid of 1/32
(|x| <= 4, as tests/grad_check.hpp's dyadic_randn), so that the products of the
projections are exact in float32 and grad_case's error bounds apply. torch
differentiates in float64 from the same float32 values; attn runs its reference
forward and backward (the `grad_case` program). Each gradient is compared
norm-wise within tolerance.grad_error_bound, from the bound norm grad_case prints.
"""

import zlib

import numpy as np
import pytest
import torch

from attn_tool import run_case_tool
from tolerance import grad_error_bound, relative_error


def tensor_json(t, dtype="float32"):
    t = t.detach()
    data = t.to(torch.int64 if dtype == "bool" else torch.float32).reshape(-1).tolist()
    return {"shape": list(t.shape), "data": data, "dtype": dtype}


def dyadic(shape, gen, std=1.0):
    """N(0, std^2) rounded to the grid of 1/32 and clipped to [-4, 4], in float32."""
    x = torch.randn(shape, generator=gen, dtype=torch.float64) * std
    return (torch.clamp(torch.round(x * 32), -128, 128) / 32).float()


def run_attn(case):
    out = run_case_tool("GRAD_CASE_BIN", case)
    grads = {k: np.array(v["data"], dtype=np.float64).reshape(v["shape"]) for k, v in out["grads"].items()}
    return grads, out["bound_norms"]


def expect_gradients(name, got, bounds, want):
    """Every gradient torch computed, within its budget; no more and no fewer."""
    assert set(got) == set(want), f"{name}: attn returns {sorted(got)}, torch {sorted(want)}"
    for key, w in want.items():
        w = w.detach().numpy()
        assert got[key].shape == w.shape, f"{name}: d/d{key} has shape {got[key].shape}, torch's {w.shape}"
        err = float(np.linalg.norm(got[key] - w))
        budget = grad_error_bound(bounds[key], float(np.linalg.norm(w)))
        assert err <= budget, (f"{name}: ||d/d{key} - torch's|| = {err:.3g} > {budget:.3g} "
                               f"(relative error {relative_error(got[key], w):.3g})")


# (name, constructor options, L, S, B (None: unbatched), masks, is_causal)
MHA_CASES = [
    ("packed", dict(embed_dim=8, num_heads=2), 5, 5, 3, {}, False),
    ("batch_first", dict(embed_dim=8, num_heads=4, batch_first=True), 4, 6, 2, {}, False),
    ("no_bias", dict(embed_dim=6, num_heads=3, bias=False), 4, 4, 2, {}, False),
    ("kdim_vdim", dict(embed_dim=8, num_heads=2, kdim=5, vdim=3), 4, 7, 2, {}, False),
    ("add_bias_kv", dict(embed_dim=8, num_heads=2, add_bias_kv=True), 4, 5, 2, {"kpm": "bool"}, False),
    ("add_zero_attn", dict(embed_dim=8, num_heads=2, add_zero_attn=True), 4, 5, 2, {"attn": "bool2"}, False),
    ("bias_kv_and_zero_attn", dict(embed_dim=8, num_heads=2, add_bias_kv=True, add_zero_attn=True),
     3, 4, 2, {"kpm": "bool", "attn": "float3"}, False),
    # A float key_padding_mask with a float attn_mask is left out, as in test_mha_parity.py.
    ("kpm_float", dict(embed_dim=8, num_heads=2), 5, 6, 3, {"kpm": "float"}, False),
    ("attn_mask_bool_3d", dict(embed_dim=8, num_heads=2), 5, 6, 3, {"attn": "bool3"}, False),
    ("attn_mask_float_2d", dict(embed_dim=8, num_heads=4, batch_first=True), 5, 6, 2, {"attn": "float2"}, False),
    ("is_causal", dict(embed_dim=8, num_heads=2), 6, 6, 2, {}, True),
    ("unbatched", dict(embed_dim=8, num_heads=2), 4, 5, None, {"kpm": "bool"}, False),
]


def mask_for(kind, shape, gen):
    """A bool mask (True blocks, never key 0, so no torch row is all masked) or a float one."""
    if kind.startswith("bool"):
        m = torch.rand(shape, generator=gen) < 0.4
        m[..., 0] = False
        return m
    return dyadic(shape, gen)


@pytest.mark.parametrize("name,options,L,S,B,masks,is_causal", MHA_CASES, ids=[c[0] for c in MHA_CASES])
def test_multi_head_attention_gradients_match_torch(name, options, L, S, B, masks, is_causal):
    seed = zlib.crc32(("backward " + name).encode())
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    module = torch.nn.MultiheadAttention(**options)
    with torch.no_grad():  # weights ~ N(0, 1/cols), biases ~ N(0, 1/4), on the grid
        for p in module.parameters():
            p.copy_(dyadic(p.shape, gen, p.shape[-1] ** -0.5 if p.dim() == 2 else 0.5))
    E, H = options["embed_dim"], options["num_heads"]
    kdim, vdim = options.get("kdim", E), options.get("vdim", E)
    batch_first = options.get("batch_first", False)
    Bn = B or 1

    def seq(length, width):
        if B is None:
            return dyadic((length, width), gen)
        return dyadic((B, length, width) if batch_first else (length, B, width), gen)

    query, key, value = seq(L, E), seq(S, kdim), seq(S, vdim)
    kpm = None
    if "kpm" in masks:
        kpm = mask_for(masks["kpm"], (Bn, S), gen)
        if B is None:
            kpm = kpm[0]
    attn_mask = None
    if "attn" in masks:
        kind = masks["attn"]
        attn_mask = mask_for(kind, (L, S) if kind.endswith("2") else (Bn * H, L, S), gen)
    # torch 1.13 has no is_causal: the same mask, spelled out.
    torch_mask = torch.triu(torch.ones(L, S, dtype=torch.bool), 1) if is_causal else attn_mask

    m64 = module.double()
    inputs = {k: t.double().requires_grad_() for k, t in (("query", query), ("key", key), ("value", value))}
    out, _ = m64(inputs["query"], inputs["key"], inputs["value"],
                 key_padding_mask=kpm.double() if kpm is not None and kpm.is_floating_point() else kpm,
                 attn_mask=torch_mask.double() if torch_mask is not None and torch_mask.is_floating_point() else torch_mask,
                 need_weights=False)
    dy = dyadic(out.shape, gen)
    out.backward(dy.double())
    want = {k: t.grad for k, t in inputs.items()}
    want.update({n: p.grad for n, p in m64.named_parameters()})

    case = {
        "op": "mha",
        "options": {
            "embed_dim": E, "num_heads": H, "bias": options.get("bias", True),
            "add_bias_kv": options.get("add_bias_kv", False),
            "add_zero_attn": options.get("add_zero_attn", False),
            "kdim": options.get("kdim"), "vdim": options.get("vdim"), "batch_first": batch_first,
        },
        "params": {n: tensor_json(p.float()) for n, p in m64.named_parameters()},
        "query": tensor_json(query), "key": tensor_json(key), "value": tensor_json(value),
        "key_padding_mask": None if kpm is None else tensor_json(kpm, "bool" if kpm.dtype == torch.bool else "float32"),
        "attn_mask": None if attn_mask is None else tensor_json(attn_mask, "bool" if attn_mask.dtype == torch.bool else "float32"),
        "is_causal": is_causal, "grad_output": tensor_json(dy),
    }
    got, bounds = run_attn(case)
    expect_gradients(name, got, bounds, want)


# (name, B, Hq, Hkv, Lq, Lk, Dk, Dv, mask kind, is_causal, scale)
SDPA_CASES = [
    ("plain", 2, 2, 2, 5, 7, 4, 3, None, False, None),
    ("causal", 2, 2, 2, 6, 6, 4, 4, None, True, None),
    ("keep_mask", 2, 2, 2, 5, 7, 4, 3, "bool", False, None),
    ("bias_grad", 2, 2, 2, 5, 7, 4, 3, "float", False, 0.6),
    ("bias_broadcast_and_causal", 2, 4, 4, 6, 6, 3, 5, "float2", True, None),
    ("gqa", 2, 6, 2, 4, 5, 3, 2, None, True, None),
]


@pytest.mark.parametrize("name,B,Hq,Hkv,Lq,Lk,Dk,Dv,mask,is_causal,scale", SDPA_CASES, ids=[c[0] for c in SDPA_CASES])
def test_sdpa_gradients_match_torch_autograd(name, B, Hq, Hkv, Lq, Lk, Dk, Dv, mask, is_causal, scale):
    """softmax(q k^T * scale + bias, masked) v, written out in torch, differentiated by autograd."""
    gen = torch.Generator().manual_seed(zlib.crc32(("sdpa " + name).encode()))
    q, k, v = dyadic((B, Hq, Lq, Dk), gen), dyadic((B, Hkv, Lk, Dk), gen), dyadic((B, Hkv, Lk, Dv), gen)
    attn_mask = None
    if mask == "bool":  # True takes part (torch SDPA's convention); key 0 always does
        attn_mask = torch.rand((B, Hq, Lq, Lk), generator=gen) < 0.7
        attn_mask[..., 0] = True
    elif mask == "float":
        attn_mask = dyadic((B, Hq, Lq, Lk), gen)
    elif mask == "float2":
        attn_mask = dyadic((Lq, Lk), gen)
    dout = dyadic((B, Hq, Lq, Dv), gen)

    inputs = {n: t.double().requires_grad_() for n, t in (("q", q), ("k", k), ("v", v))}
    group = Hq // Hkv
    k_rep = inputs["k"].repeat_interleave(group, dim=1)
    v_rep = inputs["v"].repeat_interleave(group, dim=1)
    s = (scale if scale is not None else Dk ** -0.5) * inputs["q"] @ k_rep.transpose(-1, -2)
    if attn_mask is not None and attn_mask.dtype == torch.bool:
        s = s.masked_fill(~attn_mask, float("-inf"))
    elif attn_mask is not None:
        inputs["attn_mask"] = attn_mask.double().requires_grad_()
        s = s + inputs["attn_mask"]
    if is_causal:
        s = s.masked_fill(torch.triu(torch.ones(Lq, Lk, dtype=torch.bool), 1), float("-inf"))
    out = torch.softmax(s, dim=-1) @ v_rep
    out.backward(dout.double())
    want = {n: t.grad for n, t in inputs.items()}

    case = {
        "op": "sdpa", "q": tensor_json(q), "k": tensor_json(k), "v": tensor_json(v),
        "attn_mask": None if attn_mask is None else tensor_json(attn_mask, "bool" if attn_mask.dtype == torch.bool else "float32"),
        "is_causal": is_causal, "scale": scale, "grad_output": tensor_json(dout),
    }
    got, bounds = run_attn(case)
    expect_gradients(name, got, bounds, want)
