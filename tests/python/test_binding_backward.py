"""MultiheadAttention.backward from Python against torch autograd: the inputs' and
every parameter's gradient, under torch's names, for several option sets."""

import numpy as np
import pytest
import torch
from torch import nn

from attn_module import attn
from tolerance import float_chain_budget, relative_error

OPTIONS = [
    dict(),
    dict(bias=False, batch_first=True),
    dict(add_bias_kv=True, add_zero_attn=True),
    dict(kdim=6, vdim=10),
]


@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: ",".join(o) or "defaults")
@pytest.mark.parametrize("is_causal", [False, True])
def test_backward_is_torch_autograds(options, is_causal):
    E, H, L, S, N = 8, 2, 5, 5, 3
    torch.manual_seed(1)
    module = nn.MultiheadAttention(E, H, **options).double()
    first = options.get("batch_first")
    shape = lambda n, w: (N, n, w) if first else (n, N, w)  # noqa: E731
    q = torch.randn(*shape(L, E), dtype=torch.float64, requires_grad=True)
    k = torch.randn(*shape(S, options.get("kdim") or E), dtype=torch.float64, requires_grad=True)
    v = torch.randn(*shape(S, options.get("vdim") or E), dtype=torch.float64, requires_grad=True)
    mask = torch.triu(torch.ones(L, S + int(options.get("add_bias_kv", False)) + int(options.get("add_zero_attn", False)),
                                 dtype=torch.bool), diagonal=1) if is_causal else None
    if is_causal and mask.shape[1] > S:
        mask = mask[:, :S]  # attn_mask speaks of the S real keys; the appended ones stay open
    out, _ = module(q, k, v, attn_mask=mask)
    grad_out = torch.randn_like(out)
    out.backward(grad_out)

    mine = attn.MultiheadAttention(E, H, **options)
    mine.load_state_dict({name: t.detach().numpy() for name, t in module.state_dict().items()})
    f32 = lambda t: t.detach().float().numpy()  # noqa: E731
    mine(f32(q), f32(k), f32(v), attn_mask=None if mask is None else mask.numpy())
    dq, dk, dv, grads = mine.backward(f32(grad_out))

    # Forward and backward chains in float32: the in-projection, the head dim, the
    # keys twice and the out-projection, each way.
    keys = S + int(options.get("add_bias_kv", False)) + int(options.get("add_zero_attn", False))
    budget = 2 * float_chain_budget(max(E, options.get("kdim") or E, options.get("vdim") or E), E // H,
                                    keys, keys, E)
    for got, want in [(dq, q.grad), (dk, k.grad), (dv, v.grad)]:
        assert relative_error(got, want.numpy()) <= budget
    named = dict(module.named_parameters())
    assert list(grads) == list(named)
    for name, p in named.items():
        assert relative_error(grads[name], p.grad.numpy()) <= budget, name


def test_backward_needs_a_forward_and_the_output_shape():
    mine = attn.MultiheadAttention(8, 2)
    with pytest.raises(attn.Error):
        mine.backward(np.zeros((4, 1, 8), np.float32))
    x = np.random.default_rng(0).standard_normal((4, 1, 8)).astype(np.float32)
    mine(x, x, x)
    with pytest.raises(attn.Error):
        mine.backward(np.zeros((3, 1, 8), np.float32))
    with pytest.raises(TypeError, match="grad_output"):
        mine.backward(np.zeros((4, 1, 8), np.float64))
