"""Parity of `attn demo` with the source documents' own PyTorch and numpy code.

`attn demo --json FILE` records every example's float32 inputs, parameters (by
their PyTorch names) and outputs. Each test below reads one example, runs the
document's code on the same numbers in float64, and compares.

Error budgets: the rule of tolerance.py (that of tests/tolerance.hpp), applied to
the chain of reductions of each example in the table below. Errors are norm-wise,
||attn - float64|| / ||float64|| over a whole output. With u = eps_f32 / 2, a
float32 chain of reductions of lengths n_1, n_2, ... is within gamma_n = n u,
n = n_1 + n_2 + ... (Higham). The softmax turns a relative score error d into a
weight error of at most 2 max|s| d; scores of unit-variance inputs stay below 8,
hence the gain 16, and the numpy example, whose scores are in the hundreds, uses
2 max|s| measured on its float64 scores. Its projection q = w_q x has no softmax:
float_sum_budget(256) with the condition of the sums measured in float64.

    example                               reductions (chain)                     gain
    doc000_d2l_multi_head_attention       W_q 100, QK^T 20, softmax 6, AV 6, W_o 100  16
    doc001_dot_product                    x1 x2^T 4, softmax 5, AV 5                  16
    doc002_* (d_model 32, 4 heads)        w 32, QK^T 8, softmax 6, AV 6, dense 32     16
    doc003_numpy_columns                  w_q x 256, k^T q 256, softmax 32, V A 32    2 max|s|
    doc003_self_attention_module          Linear 2, QK^T 4, softmax 3, AV 3           16
    doc004_masked_softmax_{1d,2d}         softmax 4                                   16
    doc004_additive_attention             W_q 20, w_v 8, softmax 10, AV 10            16
    doc004_dot_product_attention          QK^T 2, softmax 10, AV 10                   16
"""

import json
import math
import subprocess

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from tolerance import EPS_F32, SOFTMAX_GAIN, float_chain_budget, float_sum_budget, relative_error
from attn_tool import attn_bin
from d2l_code import AdditiveAttention, DotProductAttention, masked_softmax

REDUCTIONS = {
    "doc000_d2l_multi_head_attention": (100, 20, 6, 6, 100),
    "doc001_dot_product": (4, 5, 5),
    "doc002": (32, 8, 6, 6, 32),
    "doc003_numpy_columns": (256, 256, 32, 32),
    "doc003_self_attention_module": (2, 4, 3, 3),
    "doc004_masked_softmax": (4,),
    "doc004_additive_attention": (20, 8, 10, 10),
    "doc004_dot_product_attention": (2, 10, 10),
}


def budget(key, gain=SOFTMAX_GAIN):
    """The example's chain of REDUCTIONS through a softmax of the given gain."""
    return float_chain_budget(*REDUCTIONS[key], gain=gain)


# ---- the record written by `attn demo --json` ----------------------------------------------


@pytest.fixture(scope="module")
def record(tmp_path_factory):
    path = tmp_path_factory.mktemp("demo") / "demo.json"
    run = subprocess.run([attn_bin(), "demo", "--json", str(path), "--out",
                          str(path.parent / "pictures")], capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr
    with open(path) as f:
        data = json.load(f)
    assert data["format"] == "attn-demo/1"
    assert data["dtype"] == "float32"
    return data["examples"]


def tensor(example, name):
    """A recorded tensor as float64 (the recorded values are the float32 bits)."""
    t = example["tensors"][name]
    return torch.tensor(t["data"], dtype=torch.float64).reshape(t["shape"])


def assert_close(got, want, tol, what):
    got = got.to(torch.float64)
    want = want.to(torch.float64)
    assert got.shape == want.shape, f"{what}: shape {tuple(got.shape)} != {tuple(want.shape)}"
    assert not torch.isnan(got).any(), f"{what}: attn produced NaN"
    error = relative_error(got.detach().numpy(), want.detach().numpy())
    assert error <= tol, f"{what}: relative error {error:.3g} exceeds the budget {tol:.3g}"


def load(linear, weight, bias=None):
    with torch.no_grad():
        linear.weight.copy_(weight)
        if bias is not None:
            linear.bias.copy_(bias)


# ---- the documents' code ---------------------------------------------------------------------


def transpose_qkv(X, num_heads):
    """Document 000 (which writes 20 for num_hiddens / num_heads)."""
    X = X.reshape(X.shape[0], X.shape[1], num_heads, -1)
    X = X.permute(0, 2, 1, 3)
    return X.reshape(-1, X.shape[2], X.shape[3])


def transpose_output(X, num_heads):
    """Document 000."""
    X = X.reshape(-1, num_heads, X.shape[1], X.shape[2])
    X = X.permute(0, 2, 1, 3)
    return X.reshape(X.shape[0], X.shape[1], -1)


class D2lMultiHeadAttention(nn.Module):
    """d2l.ai's MultiHeadAttention, whose pieces document 000 prints."""

    def __init__(self, key_size, query_size, value_size, num_hiddens, num_heads, dropout,
                 bias=False, **kwargs):
        super().__init__(**kwargs)
        self.num_heads = num_heads
        self.attention = DotProductAttention(dropout)
        self.W_q = nn.Linear(query_size, num_hiddens, bias=bias)
        self.W_k = nn.Linear(key_size, num_hiddens, bias=bias)
        self.W_v = nn.Linear(value_size, num_hiddens, bias=bias)
        self.W_o = nn.Linear(num_hiddens, num_hiddens, bias=bias)

    def forward(self, queries, keys, values, valid_lens):
        queries = transpose_qkv(self.W_q(queries), self.num_heads)
        keys = transpose_qkv(self.W_k(keys), self.num_heads)
        values = transpose_qkv(self.W_v(values), self.num_heads)
        if valid_lens is not None:
            valid_lens = torch.repeat_interleave(valid_lens, repeats=self.num_heads, dim=0)
        output = self.attention(queries, keys, values, valid_lens)
        self.heads = output
        self.concat = transpose_output(output, self.num_heads)
        return self.W_o(self.concat)


def tutorial_scaled_dot_product_attention(q, k, v, mask=None):
    """Document 002 (its sqrt is taken in float32; here in float64)."""
    matmul_qk = torch.matmul(q, k.transpose(-2, -1))
    dk = k.size()[-1]
    scaled_attention_logits = matmul_qk / torch.sqrt(torch.tensor(dk, dtype=torch.float64))

    if mask is not None:
        scaled_attention_logits += (mask * -1e9)

    attention_weights = F.softmax(scaled_attention_logits, dim=-1)
    output = torch.matmul(attention_weights, v)
    return output, attention_weights


class TutorialMultiHeadAttention(nn.Module):
    """Document 002's MultiHeadAttention(d_model, num_heads)."""

    def __init__(self, d_model, num_heads):
        super(TutorialMultiHeadAttention, self).__init__()
        self.num_heads = num_heads
        self.d_model = d_model
        self.depth = d_model // num_heads

        self.wq = nn.Linear(d_model, d_model)
        self.wk = nn.Linear(d_model, d_model)
        self.wv = nn.Linear(d_model, d_model)

        self.dense = nn.Linear(d_model, d_model)

    def split_heads(self, x, batch_size):
        x = x.view(batch_size, -1, self.num_heads, self.depth)
        return x.permute(0, 2, 1, 3)

    def forward(self, q, k, v, mask=None):
        batch_size = q.size(0)

        q = self.wq(q)
        k = self.wk(k)
        v = self.wv(v)

        q = self.split_heads(q, batch_size)
        k = self.split_heads(k, batch_size)
        v = self.split_heads(v, batch_size)

        scaled_attention, _ = tutorial_scaled_dot_product_attention(q, k, v, mask)

        scaled_attention = scaled_attention.permute(0, 2, 1, 3).contiguous()
        concat_attention = scaled_attention.view(batch_size, -1, self.d_model)

        output = self.dense(concat_attention)

        return output


class Self_Attention(nn.Module):
    """Document 003's module, with the scale inside the softmax where it belongs."""

    def __init__(self, input_dim, dim_k, dim_v):
        super(Self_Attention, self).__init__()
        self.q = nn.Linear(input_dim, dim_k)
        self.k = nn.Linear(input_dim, dim_k)
        self.v = nn.Linear(input_dim, dim_v)
        self._norm_fact = 1 / math.sqrt(dim_k)

    def forward(self, x):
        Q = self.q(x)
        K = self.k(x)
        V = self.v(x)
        # The document: nn.Softmax(dim=-1)(torch.bmm(Q, K.permute(0, 2, 1))) * self._norm_fact
        atten = nn.Softmax(dim=-1)(torch.bmm(Q, K.permute(0, 2, 1)) * self._norm_fact)
        output = torch.bmm(atten, V)
        return output


def numpy_softmax(x):
    """Document 003's softmax down each column. The document subtracts the global
    max, np.max(x), which underflows a whole column to 0/0 once its own max is
    ~745 below the global one; each column's max gives the same values safely."""
    e_x = np.exp(x - np.max(x, axis=0, keepdims=True))
    return e_x / e_x.sum(axis=0)


def torch_multihead(example, embed_dim, num_heads, bias):
    """nn.MultiheadAttention in float64 holding the recorded parameters."""
    mha = nn.MultiheadAttention(embed_dim, num_heads, bias=bias, batch_first=True,
                                dtype=torch.float64)
    with torch.no_grad():
        mha.in_proj_weight.copy_(tensor(example, "in_proj_weight"))
        mha.out_proj.weight.copy_(tensor(example, "out_proj.weight"))
        if bias:
            mha.in_proj_bias.copy_(tensor(example, "in_proj_bias"))
            mha.out_proj.bias.copy_(tensor(example, "out_proj.bias"))
    return mha.eval()


# ---- the examples ----------------------------------------------------------------------------


def test_doc000_d2l_multi_head_attention(record):
    ex = record["doc000_d2l_multi_head_attention"]
    cfg = ex["config"]
    E, H = cfg["num_hiddens"], cfg["num_heads"]
    assert cfg["bias"] is False
    X, Y = tensor(ex, "queries"), tensor(ex, "keys")
    valid_lens = torch.tensor(cfg["valid_lens"])
    W = tensor(ex, "in_proj_weight")
    tol = budget("doc000_d2l_multi_head_attention")

    d2l = D2lMultiHeadAttention(E, E, E, E, H, cfg["dropout"]).to(torch.float64).eval()
    load(d2l.W_q, W[:E])
    load(d2l.W_k, W[E:2 * E])
    load(d2l.W_v, W[2 * E:])
    load(d2l.W_o, tensor(ex, "out_proj.weight"))
    with torch.no_grad():
        want = d2l(X, Y, Y, valid_lens)
    B, Lq, Lk = X.shape[0], X.shape[1], Y.shape[1]
    assert tensor(ex, "projected_queries").shape == (B, Lq, E)
    assert_close(tensor(ex, "projected_queries"), d2l.W_q(X).detach(), tol, "W_q(X)")
    assert_close(tensor(ex, "attention_weights"),
                 d2l.attention.attention_weights.reshape(B, H, Lq, Lk), tol, "weights")
    assert_close(tensor(ex, "attention_output"), d2l.heads.reshape(B, H, Lq, E // H), tol,
                 "attention output")
    assert_close(tensor(ex, "concat"), d2l.concat, tol, "transpose_output")
    assert_close(tensor(ex, "output"), want, tol, "W_o output")

    # The module path against nn.MultiheadAttention: valid_lens as a key padding mask.
    mha = torch_multihead(ex, E, H, bias=False)
    padding = torch.arange(Lk)[None, :] >= valid_lens[:, None]
    with torch.no_grad():
        out, weights = mha(X, Y, Y, key_padding_mask=padding, average_attn_weights=False)
    assert_close(tensor(ex, "module_output"), out, tol, "module output")
    assert_close(tensor(ex, "module_output"), want, tol, "module output vs d2l")
    assert_close(tensor(ex, "module_weights"), weights, tol, "module weights")


def test_doc001_dot_product(record):
    ex = record["doc001_dot_product"]
    x1, x2 = tensor(ex, "x1"), tensor(ex, "x2")
    tol = budget("doc001_dot_product")
    raw_weights = torch.bmm(x1, x2.transpose(1, 2))
    attn_weights = F.softmax(raw_weights, dim=-1)
    attn_output = torch.bmm(attn_weights, x2)
    assert_close(tensor(ex, "raw_weights"), raw_weights, tol, "raw weights")
    assert_close(tensor(ex, "attention_weights"), attn_weights, tol, "weights")
    assert_close(tensor(ex, "output"), attn_output, tol, "output")


@pytest.mark.parametrize("name", ["doc002_encoder_self_attention",
                                  "doc002_decoder_masked_self_attention",
                                  "doc002_encoder_decoder_attention"])
def test_doc002_transformer_multi_head_attention(record, name):
    ex = record[name]
    cfg = ex["config"]
    d_model, num_heads = cfg["d_model"], cfg["num_heads"]
    assert cfg["masked_value"] == -1e9
    q, k, v = tensor(ex, "query"), tensor(ex, "key"), tensor(ex, "value")
    tol = budget("doc002")
    names = ex["tensors"]

    # The tutorial's class, its mask broadcast over (B, num_heads, L, S).
    tutorial = TutorialMultiHeadAttention(d_model, num_heads).to(torch.float64)
    W, b = tensor(ex, "in_proj_weight"), tensor(ex, "in_proj_bias")
    for i, linear in enumerate([tutorial.wq, tutorial.wk, tutorial.wv]):
        load(linear, W[i * d_model:(i + 1) * d_model], b[i * d_model:(i + 1) * d_model])
    load(tutorial.dense, tensor(ex, "out_proj.weight"), tensor(ex, "out_proj.bias"))
    mask, key_padding_mask, attn_mask = None, None, None
    if "padding_mask" in names:
        padding = tensor(ex, "padding_mask")  # (B, S), 1 = padding
        mask = padding[:, None, None, :]
        key_padding_mask = padding * -1e9
    if "look_ahead_mask" in names:
        look_ahead = tensor(ex, "look_ahead_mask")  # (L, L), 1 = future
        mask = look_ahead
        attn_mask = look_ahead * -1e9
    with torch.no_grad():
        want = tutorial(q, k, v, mask)
    assert_close(tensor(ex, "output"), want, tol, "output vs the tutorial's class")

    mha = torch_multihead(ex, d_model, num_heads, bias=True)
    with torch.no_grad():
        out, weights = mha(q, k, v, key_padding_mask=key_padding_mask, attn_mask=attn_mask,
                           average_attn_weights=False)
    assert_close(tensor(ex, "output"), out, tol, "output vs nn.MultiheadAttention")
    assert_close(tensor(ex, "attention_weights"), weights, tol, "per-head weights")


def test_doc003_numpy_columns(record):
    ex = record["doc003_numpy_columns"]
    d, n = ex["config"]["d"], ex["config"]["n"]
    x, w_q, w_k, w_v = (tensor(ex, name).numpy() for name in ("x", "w_q", "w_k", "w_v"))
    assert x.shape == (d, n) == (256, 32)
    q = w_q @ x
    k = w_k @ x
    v = w_v @ x
    A = k.T @ q
    A /= np.sqrt(d)
    A_hat = numpy_softmax(A)
    output = v @ A_hat
    assert output.shape == (256, 32)
    tol = budget("doc003_numpy_columns", gain=max(SOFTMAX_GAIN, 2 * np.abs(A).max()))
    condition = np.linalg.norm(np.abs(w_q) @ np.abs(x)) / np.linalg.norm(q)
    assert_close(tensor(ex, "q"), torch.from_numpy(q), float_sum_budget(d, condition=condition), "q = w_q x")
    assert_close(tensor(ex, "A_hat"), torch.from_numpy(A_hat), tol, "A_hat")
    assert_close(tensor(ex, "output"), torch.from_numpy(output), tol, "output")
    assert np.allclose(tensor(ex, "A_hat").numpy().sum(axis=0), 1.0, rtol=0, atol=n * EPS_F32)


def test_doc003_self_attention_module(record):
    ex = record["doc003_self_attention_module"]
    cfg = ex["config"]
    input_dim, dim_k, dim_v = cfg["input_dim"], cfg["dim_k"], cfg["dim_v"]
    X = tensor(ex, "X")
    module = Self_Attention(input_dim, dim_k, dim_v).to(torch.float64)
    b = tensor(ex, "in_proj_bias")
    load(module.q, tensor(ex, "q_proj_weight"), b[:dim_k])
    load(module.k, tensor(ex, "k_proj_weight"), b[dim_k:2 * dim_k])
    load(module.v, tensor(ex, "v_proj_weight"), b[2 * dim_k:])
    with torch.no_grad():
        res = module(X)
    assert res.shape == (4, 3, 5)
    assert_close(tensor(ex, "output"), res, budget("doc003_self_attention_module"), "output")


@pytest.mark.parametrize("name", ["doc004_masked_softmax_1d", "doc004_masked_softmax_2d"])
def test_doc004_masked_softmax(record, name):
    ex = record[name]
    assert ex["config"]["masked_value"] == -1e6
    want = masked_softmax(tensor(ex, "X"), torch.tensor(ex["config"]["valid_lens"]))
    assert_close(tensor(ex, "output"), want, budget("doc004_masked_softmax"), "masked_softmax")


# Ten identical keys: every kept key gets the same weight, so the output is the mean
# of the first valid_lens = [2, 6] rows of arange(40).reshape(10, 4).
MEAN_OF_KEPT_VALUES = torch.tensor([[[2.0, 3.0, 4.0, 5.0]], [[10.0, 11.0, 12.0, 13.0]]],
                                   dtype=torch.float64)


def test_doc004_additive_attention(record):
    ex = record["doc004_additive_attention"]
    queries, keys, values = tensor(ex, "queries"), tensor(ex, "keys"), tensor(ex, "values")
    valid_lens = torch.tensor(ex["config"]["valid_lens"])
    W_q = tensor(ex, "W_q.weight")
    attention = AdditiveAttention(key_size=keys.shape[-1], query_size=queries.shape[-1],
                                  num_hiddens=W_q.shape[0], dropout=ex["config"]["dropout"])
    attention = attention.to(torch.float64)
    load(attention.W_q, W_q)
    load(attention.W_k, tensor(ex, "W_k.weight"))
    load(attention.w_v, tensor(ex, "w_v.weight"))
    attention.eval()
    with torch.no_grad():
        want = attention(queries, keys, values, valid_lens)
    tol = budget("doc004_additive_attention")
    assert_close(tensor(ex, "output"), want, tol, "output")
    assert_close(tensor(ex, "attention_weights"), attention.attention_weights, tol, "weights")
    assert_close(tensor(ex, "output"), MEAN_OF_KEPT_VALUES, tol, "[[2,3,4,5]], [[10,11,12,13]]")


def test_doc004_dot_product_attention(record):
    ex = record["doc004_dot_product_attention"]
    queries, keys, values = tensor(ex, "queries"), tensor(ex, "keys"), tensor(ex, "values")
    valid_lens = torch.tensor(ex["config"]["valid_lens"])
    attention = DotProductAttention(dropout=ex["config"]["dropout"])
    attention.eval()
    with torch.no_grad():
        want = attention(queries, keys, values, valid_lens)
    tol = budget("doc004_dot_product_attention")
    assert_close(tensor(ex, "output"), want, tol, "output")
    assert_close(tensor(ex, "attention_weights"), attention.attention_weights, tol, "weights")
    assert_close(tensor(ex, "output"), MEAN_OF_KEPT_VALUES, tol, "[[2,3,4,5]], [[10,11,12,13]]")


def test_demo_prints_every_document(tmp_path):
    run = subprocess.run([attn_bin(), "demo", "--out", str(tmp_path)], capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    positions = [run.stdout.find(f"Document {i:03d}:") for i in range(5)]
    assert all(p >= 0 for p in positions), positions
    assert positions == sorted(positions), "documents out of order"
