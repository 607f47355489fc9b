"""The nn.MultiheadAttention cases that attn is held to, option by option, and
torch's float64 answer to each: shared by the C++ parity test (test_mha_parity.py,
through the mha_case program) and the Python module's (test_binding_modules.py).

Each case builds a torch module with random parameters (non-zero biases, so that
they are checked too), draws float32 inputs and masks, and runs the module in
float64 on them.
"""

import zlib
from dataclasses import dataclass
from typing import Optional

import torch

from tolerance import mha_budgets

# (name, constructor options, L, S, B (None: unbatched), masks, forward flags)
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
    # torch 2 wants attn_mask beside is_causal, as the hint that it is the causal mask.
    ("is_causal_with_its_mask", dict(embed_dim=8, num_heads=2, batch_first=True), 6, 6, 2,
     {"attn": "causal"}, {"is_causal": True}),
    ("unbatched", dict(embed_dim=8, num_heads=2), 4, 5, None, {"kpm": "bool"}, {}),
    ("unbatched_per_head_weights", dict(embed_dim=8, num_heads=4, kdim=6), 3, 5, None,
     {"attn": "float2"}, {"average_attn_weights": False}),
    # Dropout is off in eval mode, where the cases run.
    ("dropout_in_eval_mode", dict(embed_dim=8, num_heads=2, dropout=0.5), 5, 6, 2, {"attn": "bool2"}, {}),
]
CASE_IDS = [c[0] for c in CASES]


def make_mask(kind, B, H, L, S, gen):
    """A random mask of `kind` that never blocks key 0, so no torch row is all masked."""
    if kind is None:
        return None
    if kind == "causal":
        return torch.triu(torch.ones(L, S, dtype=torch.bool), 1)
    if kind.startswith("bool"):
        shape = {"bool2": (L, S), "bool3": (B * H, L, S)}[kind]
        m = torch.rand(shape, generator=gen) < 0.4
        m[..., 0] = False
        return m
    shape = {"float2": (L, S), "float3": (B * H, L, S)}[kind]
    return torch.randn(shape, generator=gen, dtype=torch.float32)


@dataclass
class TorchCase:
    module: torch.nn.MultiheadAttention  # float32, eval mode
    query: torch.Tensor                  # float32 inputs
    key: torch.Tensor
    value: torch.Tensor
    key_padding_mask: Optional[torch.Tensor]
    attn_mask: Optional[torch.Tensor]
    need_weights: bool
    average_attn_weights: bool
    is_causal: bool
    want_output: torch.Tensor            # float64
    want_weights: Optional[torch.Tensor]
    budgets: tuple                       # (output, weights), tolerance.mha_budgets


def as_float64(mask):
    return mask.double() if mask is not None and mask.is_floating_point() else mask


def torch_case(name, options, L, S, B, masks, flags):
    """The case's module, inputs and torch's float64 outputs."""
    seed = zlib.crc32(name.encode())
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    module = torch.nn.MultiheadAttention(**options)
    with torch.no_grad():
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
    m64 = torch.nn.MultiheadAttention(**options).double()
    m64.load_state_dict(module.state_dict())
    m64.eval()
    with torch.no_grad():
        want_out, want_w = m64(query.double(), key.double(), value.double(),
                               key_padding_mask=as_float64(kpm), need_weights=need_weights,
                               attn_mask=as_float64(torch_mask), average_attn_weights=average)
    budgets = mha_budgets(E, H, S, kdim=options.get("kdim"), vdim=options.get("vdim"),
                          add_bias_kv=options.get("add_bias_kv", False),
                          add_zero_attn=options.get("add_zero_attn", False))
    return TorchCase(module, query, key, value, kpm, attn_mask, need_weights, average, is_causal,
                     want_out, want_w, budgets)
