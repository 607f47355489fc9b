"""attn::MultiHeadAttention against torch.nn.MultiheadAttention, option by option.

Each case of mha_cases.py builds a torch module with random parameters, runs it
in float64 on float32 inputs, and runs the same parameters and inputs through
attn (the `mha_case` program, which reads one case as JSON). Outputs and weights are
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


import numpy as np
import pytest
import torch

from mha_cases import CASE_IDS, CASES, torch_case
from attn_tool import run_case_tool
from tolerance import mha_budgets, relative_error


def tensor_json(t, dtype="float32"):
    t = t.detach()
    data = t.to(torch.int64 if dtype == "bool" else torch.float32).reshape(-1).tolist()
    return {"shape": list(t.shape), "data": data, "dtype": dtype}


def run_attn(case):
    out = run_case_tool("MHA_CASE_BIN", case)
    return {k: np.array(v["data"], dtype=np.float64).reshape(v["shape"]) for k, v in out.items()}


@pytest.mark.parametrize("name,options,L,S,B,masks,flags", CASES, ids=CASE_IDS)
def test_multi_head_attention_matches_torch(name, options, L, S, B, masks, flags):
    c = torch_case(name, options, L, S, B, masks, flags)

    def mask_json(m):
        return None if m is None else tensor_json(m, "bool" if m.dtype == torch.bool else "float32")

    case = {
        "options": {
            "embed_dim": options["embed_dim"], "num_heads": options["num_heads"],
            "bias": options.get("bias", True),
            "add_bias_kv": options.get("add_bias_kv", False),
            "add_zero_attn": options.get("add_zero_attn", False),
            "kdim": options.get("kdim"), "vdim": options.get("vdim"),
            "batch_first": options.get("batch_first", False),
        },
        "params": {n: tensor_json(p) for n, p in c.module.state_dict().items()},
        "query": tensor_json(c.query), "key": tensor_json(c.key), "value": tensor_json(c.value),
        "key_padding_mask": mask_json(c.key_padding_mask), "attn_mask": mask_json(c.attn_mask),
        "need_weights": c.need_weights, "average_attn_weights": c.average_attn_weights,
        "is_causal": c.is_causal,
    }
    got = run_attn(case)

    tol, tol_w = c.budgets
    err = relative_error(got["output"], c.want_output.numpy())
    assert err <= tol, f"{name}: output relative error {err:.3g} > {tol:.3g}"
    if c.need_weights:
        err_w = relative_error(got["weights"], c.want_weights.numpy())
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
