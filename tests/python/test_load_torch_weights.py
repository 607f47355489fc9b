"""Weights from PyTorch, through safetensors, into attn: parity with torch itself.

Each case builds a torch module with random parameters (every one non-zero, biases
included) or trains one for a few steps: nn.MultiheadAttention under several option
sets, and the tutorials' own modules (d2l's MultiHeadAttention, the Transformer
tutorial's, Self_Attention). Its state_dict goes into a safetensors file written by
write_safetensors (safetensors_spec.py), which follows the format's description and shares nothing
with attn (torch's order, not sorted; json.dumps' spacing; F32, F64, F16 or BF16).
examples/load_torch_weights loads the file, runs the forward on inputs saved with
np.save, and saves its state_dict back. Its output (and weights) must be torch's,
computed in float64 from the same parameters and inputs, within the budgets of
tolerance.py; the file it saves must load into torch with load_state_dict(strict=True)
and give back every parameter bit for bit (WEIGHT_FILE_ERROR).
"""

import math
import os
import subprocess
import zlib

import numpy as np
import pytest
import torch
from torch import nn

from safetensors_spec import read_safetensors, write_safetensors
from tolerance import WEIGHT_FILE_ERROR, attention_module_budget, mha_budgets, relative_error

# ---- the tutorials' modules, as the documents write them --------------------------------------


class D2lMultiHeadAttention(nn.Module):
    """d2l.ai's MultiHeadAttention (transpose_qkv, DotProductAttention, transpose_output)."""

    def __init__(self, key_size, query_size, value_size, num_hiddens, num_heads, bias=False):
        super().__init__()
        self.num_heads = num_heads
        self.W_q = nn.Linear(query_size, num_hiddens, bias=bias)
        self.W_k = nn.Linear(key_size, num_hiddens, bias=bias)
        self.W_v = nn.Linear(value_size, num_hiddens, bias=bias)
        self.W_o = nn.Linear(num_hiddens, num_hiddens, bias=bias)

    def transpose_qkv(self, X):
        X = X.reshape(X.shape[0], X.shape[1], self.num_heads, -1).permute(0, 2, 1, 3)
        return X.reshape(-1, X.shape[2], X.shape[3])

    def transpose_output(self, X):
        X = X.reshape(-1, self.num_heads, X.shape[1], X.shape[2]).permute(0, 2, 1, 3)
        return X.reshape(X.shape[0], X.shape[1], -1)

    def forward(self, queries, keys, values):
        q, k, v = (self.transpose_qkv(W(x)) for W, x in ((self.W_q, queries), (self.W_k, keys), (self.W_v, values)))
        scores = torch.bmm(q, k.transpose(1, 2)) / math.sqrt(q.shape[-1])
        return self.W_o(self.transpose_output(torch.bmm(torch.softmax(scores, dim=-1), v)))


class TutorialMultiHeadAttention(nn.Module):
    """The Transformer tutorial's MultiHeadAttention(d_model, num_heads)."""

    def __init__(self, d_model, num_heads):
        super().__init__()
        self.num_heads, self.d_model, self.depth = num_heads, d_model, d_model // num_heads
        self.wq = nn.Linear(d_model, d_model)
        self.wk = nn.Linear(d_model, d_model)
        self.wv = nn.Linear(d_model, d_model)
        self.dense = nn.Linear(d_model, d_model)

    def split_heads(self, x, batch_size):
        return x.view(batch_size, -1, self.num_heads, self.depth).permute(0, 2, 1, 3)

    def forward(self, q, k, v):
        B = q.size(0)
        q, k, v = self.split_heads(self.wq(q), B), self.split_heads(self.wk(k), B), self.split_heads(self.wv(v), B)
        logits = torch.matmul(q, k.transpose(-2, -1)) / math.sqrt(k.size(-1))
        out = torch.matmul(torch.softmax(logits, dim=-1), v)
        return self.dense(out.permute(0, 2, 1, 3).contiguous().view(B, -1, self.d_model))


class SelfAttention(nn.Module):
    """The document's Self_Attention(input_dim, dim_k, dim_v), with 1/sqrt(dim_k) applied to
    the scores: the document scales after the softmax, a bug attn does not reproduce."""

    def __init__(self, input_dim, dim_k, dim_v):
        super().__init__()
        self.q = nn.Linear(input_dim, dim_k)
        self.k = nn.Linear(input_dim, dim_k)
        self.v = nn.Linear(input_dim, dim_v)
        self._norm_fact = 1 / math.sqrt(dim_k)

    def forward(self, x, _key=None, _value=None):
        Q, K, V = self.q(x), self.k(x), self.v(x)
        return torch.bmm(torch.softmax(torch.bmm(Q, K.permute(0, 2, 1)) * self._norm_fact, dim=-1), V)


# ---- running attn -----------------------------------------------------------------------------


def run_example(tmp_path, model, inputs):
    binary = os.environ.get("LOAD_TORCH_WEIGHTS_BIN")
    if not binary:
        pytest.fail("LOAD_TORCH_WEIGHTS_BIN is not set: run through ctest, or set it to the built "
                    "examples/load_torch_weights")
    paths = []
    for name, x in zip(("query", "key", "value"), inputs):
        paths.append(str(tmp_path / f"{name}.npy"))
        np.save(paths[-1], x.numpy().astype(np.float32))
    out, weights, resaved = (str(tmp_path / n) for n in ("out.npy", "weights.npy", "resaved.safetensors"))
    done = subprocess.run([binary, str(model), *paths, out, "--weights", weights, "--save", resaved],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    return np.load(out), np.load(weights), resaved


def randomize(module, gen):
    """Every parameter non-zero (torch starts biases at zero), so that each is checked."""
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.5)


def round_to(module, dtype):
    """Parameters rounded to what a 16-bit file holds, so that torch computes with them too."""
    if dtype in ("F16", "BF16"):
        with torch.no_grad():
            for p in module.parameters():
                p.copy_(p.to(torch.float16 if dtype == "F16" else torch.bfloat16).to(torch.float32))


def train(module, inputs, gen, steps=25):
    """A few Adam steps towards a random target: weights as training leaves them."""
    target = torch.randn(module(*inputs)[0].shape, generator=gen)
    optimizer = torch.optim.Adam(module.parameters(), lr=0.05)
    for _ in range(steps):
        optimizer.zero_grad()
        loss = ((module(*inputs)[0] - target) ** 2).mean()
        loss.backward()
        optimizer.step()


# ---- nn.MultiheadAttention --------------------------------------------------------------------

# (name, constructor options, L, S, B, file dtype, trained)
MHA_CASES = [
    ("packed", dict(embed_dim=8, num_heads=2), 5, 6, 3, "F32", False),
    ("no_bias", dict(embed_dim=6, num_heads=3, bias=False), 4, 4, 2, "F32", False),
    ("add_bias_kv", dict(embed_dim=8, num_heads=2, add_bias_kv=True), 4, 5, 2, "F32", False),
    ("add_zero_attn", dict(embed_dim=8, num_heads=4, add_zero_attn=True), 3, 5, 2, "F32", False),
    ("kdim_vdim", dict(embed_dim=8, num_heads=2, kdim=5, vdim=3), 4, 7, 2, "F32", False),
    ("batch_first", dict(embed_dim=12, num_heads=3, batch_first=True), 5, 6, 2, "F32", False),
    ("all_options", dict(embed_dim=8, num_heads=4, bias=False, add_bias_kv=True, add_zero_attn=True,
                         kdim=6, vdim=7, batch_first=True), 3, 4, 2, "F32", False),
    ("trained", dict(embed_dim=16, num_heads=4, kdim=10, vdim=12), 6, 8, 4, "F32", True),
    ("stored_f64", dict(embed_dim=8, num_heads=2), 4, 5, 2, "F64", False),
    ("stored_f16", dict(embed_dim=8, num_heads=2, add_bias_kv=True), 4, 5, 2, "F16", False),
    ("stored_bf16", dict(embed_dim=8, num_heads=2, kdim=4, vdim=6), 4, 5, 2, "BF16", False),
]


@pytest.mark.parametrize("name,options,L,S,B,dtype,trained", MHA_CASES, ids=[c[0] for c in MHA_CASES])
def test_torch_multihead_attention_from_safetensors(tmp_path, name, options, L, S, B, dtype, trained):
    gen = torch.Generator().manual_seed(zlib.crc32(name.encode()))
    torch.manual_seed(zlib.crc32(name.encode()))
    module = nn.MultiheadAttention(**options)
    E, H = options["embed_dim"], options["num_heads"]
    kdim, vdim = options.get("kdim", E), options.get("vdim", E)
    batch_first = options.get("batch_first", False)

    def seq(length, width):
        return torch.randn((B, length, width) if batch_first else (length, B, width), generator=gen)

    inputs = (seq(L, E), seq(S, kdim), seq(S, vdim))
    randomize(module, gen)
    if trained:
        train(module, inputs, gen)
    round_to(module, dtype)
    module.eval()

    metadata = {key: str(value) for key, value in options.items()}
    model = tmp_path / "mha.safetensors"
    write_safetensors(model, module.state_dict(), metadata, dtype)
    got_out, got_w, resaved = run_example(tmp_path, model, inputs)

    with torch.no_grad():
        want_out, want_w = module.double()(*(x.double() for x in inputs))
    out_budget, w_budget = mha_budgets(E, H, S, kdim, vdim, options.get("add_bias_kv", False),
                                       options.get("add_zero_attn", False))
    assert relative_error(got_out, want_out.numpy()) <= out_budget
    assert relative_error(got_w, want_w.numpy()) <= w_budget

    # Back into torch: a fresh module loads attn's file strictly and holds the same values.
    tensors, saved_metadata = read_safetensors(resaved)
    assert saved_metadata == metadata
    fresh = nn.MultiheadAttention(**options)
    fresh.load_state_dict(tensors, strict=True)
    for key, value in module.state_dict().items():
        assert np.array_equal(fresh.state_dict()[key].numpy().view(np.uint32),
                              value.float().numpy().view(np.uint32)), key
        assert relative_error(fresh.state_dict()[key].numpy(), value.numpy()) <= WEIGHT_FILE_ERROR


# ---- the tutorials' modules -------------------------------------------------------------------

# (name, constructor, its arguments, MultiHeadAttentionOptions as metadata, L, S, B, head dim, out width)
TUTORIAL_CASES = [
    ("d2l", D2lMultiHeadAttention, dict(key_size=12, query_size=12, value_size=12, num_hiddens=12,
                                        num_heads=3),
     dict(names="d2l", embed_dim=12, num_heads=3, bias=False, batch_first=True), 4, 6, 2, 4, 12),
    ("d2l_sizes_and_bias", D2lMultiHeadAttention,
     dict(key_size=5, query_size=7, value_size=3, num_hiddens=8, num_heads=2, bias=True),
     dict(names="d2l", embed_dim=8, num_heads=2, qdim=7, kdim=5, vdim=3, batch_first=True), 4, 6, 2, 4, 8),
    ("transformer_tutorial", TutorialMultiHeadAttention, dict(d_model=16, num_heads=4),
     dict(names="transformer_tutorial", embed_dim=16, num_heads=4, batch_first=True), 5, 5, 2, 4, 16),
    ("self_attention", SelfAttention, dict(input_dim=2, dim_k=4, dim_v=5),
     dict(names="self_attention", embed_dim=2, num_heads=1, qk_proj_dim=4, v_proj_dim=5, out_proj=False,
          batch_first=True), 3, 3, 4, 4, 0),
]


@pytest.mark.parametrize("name,make,args,metadata,L,S,B,head_dim,out_width", TUTORIAL_CASES,
                         ids=[c[0] for c in TUTORIAL_CASES])
def test_tutorial_modules_from_safetensors(tmp_path, name, make, args, metadata, L, S, B, head_dim, out_width):
    gen = torch.Generator().manual_seed(zlib.crc32(name.encode()))
    torch.manual_seed(zlib.crc32(name.encode()))
    module = make(**args)
    randomize(module, gen)
    module.eval()
    E = metadata["embed_dim"]
    q_width, k_width, v_width = (metadata.get(k, E) for k in ("qdim", "kdim", "vdim"))
    query = torch.randn(B, L, q_width, generator=gen)
    # Self_Attention attends over its one input.
    if make is SelfAttention:
        inputs = (query, query, query)
    else:
        inputs = (query, torch.randn(B, S, k_width, generator=gen), torch.randn(B, S, v_width, generator=gen))

    metadata = {key: str(value) for key, value in metadata.items()}
    model = tmp_path / "module.safetensors"
    write_safetensors(model, module.state_dict(), metadata)
    got_out, _, resaved = run_example(tmp_path, model, inputs)

    with torch.no_grad():
        want = module.double()(*(x.double() for x in inputs))
    budget = attention_module_budget(max(q_width, k_width, v_width), head_dim, S, out_width)
    assert relative_error(got_out, want.numpy()) <= budget

    tensors, _ = read_safetensors(resaved)
    fresh = make(**args)
    fresh.load_state_dict(tensors, strict=True)
    for key, value in module.state_dict().items():
        assert np.array_equal(fresh.state_dict()[key].numpy().view(np.uint32),
                              value.float().numpy().view(np.uint32)), key
