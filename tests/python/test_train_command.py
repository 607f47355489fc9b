"""`attn train`: the reverse task is learned from scratch, within a minute,
and what was learned is checked outside attn: torch rebuilds the model from
the saved safetensors file and must reverse fresh sequences, attending to the
mirrored position."""

import re
import subprocess
import time

import numpy as np
import torch
from torch import nn

from attn_tool import attn_bin
from png_reader import read_png
from safetensors_spec import read_safetensors


def train(out, *args):
    start = time.monotonic()
    run = subprocess.run([attn_bin(), "train", "--out", str(out), *map(str, args)],
                         capture_output=True, text=True, check=False)
    return run, time.monotonic() - start


def torch_model(tensors, metadata):
    """The reverse task's model (tools/attn/reverse_task.hpp) in torch, with attn's weights."""
    width, heads = int(metadata["width"]), int(metadata["heads"])
    attention = nn.MultiheadAttention(width, heads, batch_first=True)
    attention.load_state_dict({k[len("attention."):]: v for k, v in tensors.items()
                               if k.startswith("attention.")}, strict=True)
    readout = nn.Linear(width, int(metadata["vocab"]))
    readout.load_state_dict({"weight": tensors["readout.weight"], "bias": tensors["readout.bias"]})
    attention.eval()

    def forward(tokens):
        keys = tensors["token_embedding"][tokens] + tensors["input_position"]
        queries = tensors["output_position"].expand(tokens.shape[0], -1, -1)
        y, weights = attention(queries, keys, keys, need_weights=True)
        return readout(y), weights
    return forward


def test_reverse_task_is_learned_and_torch_agrees(tmp_path):
    run, seconds = train(tmp_path, "--seed", 3)
    assert run.returncode == 0, run.stderr
    out = run.stdout
    accuracy = float(re.search(r"held-out token accuracy ([0-9.]+)%", out).group(1))
    assert accuracy >= 99.0, out
    assert seconds < 60, out
    assert "step " in out and "loss " in out  # the progress lines

    tensors, metadata = read_safetensors(tmp_path / "reverse.safetensors")
    assert metadata["task"] == "reverse"
    length, vocab = int(metadata["length"]), int(metadata["vocab"])
    tokens = torch.from_numpy(np.random.default_rng(11).integers(0, vocab, (1000, length)))
    with torch.no_grad():
        logits, weights = torch_model(tensors, metadata)(tokens)
    torch_accuracy = (logits.argmax(-1) == tokens.flip(1)).double().mean().item()
    assert torch_accuracy >= 0.99, torch_accuracy
    mirrored = (weights.argmax(-1) == torch.arange(length - 1, -1, -1)).double().mean().item()
    assert mirrored >= 0.95, mirrored

    # attn's own held-out attention, saved beside the weights: the anti-diagonal too.
    saved = np.load(tmp_path / "attention.npy")
    assert saved.shape == (512, length, length)
    assert np.allclose(saved.sum(-1), 1, atol=1e-5)
    assert (saved.argmax(-1) == np.arange(length)[::-1]).mean() >= 0.95
    picture = read_png(tmp_path / "attention.png")
    assert picture.width > 100 and picture.height > 100


def test_bad_options_fail_with_a_message(tmp_path):
    run, _ = train(tmp_path, "--heads", 3)  # does not divide the width 32
    assert run.returncode != 0
    assert "attn:" in run.stderr and "3" in run.stderr, run.stderr
