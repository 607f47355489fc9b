"""`attn explain`: the shape after every stage of one multi-head attention forward.

The shapes printed are checked against document 000's prints (num_hiddens=100,
num_heads=5, batch_size=2, num_queries=4, num_kvpairs=6) and against shapes worked
out here by hand for a second set of sizes; `-o` writes the network picture.
"""

import re
import subprocess

import pytest

from attn_tool import attn_bin


def explain(*args):
    return subprocess.run([attn_bin(), "explain", *args], capture_output=True, text=True,
                          timeout=120)


def stage_lines(stdout):
    """The lines of the "stages:" section."""
    lines = stdout.splitlines()
    start = lines.index("stages:") + 1
    end = next((i for i in range(start, len(lines)) if not lines[i].strip()), len(lines))
    return lines[start:end]


def shape_of(line):
    """The numeric shape printed on a stage line: the last "(a, b, ...)" of digits
    before any note."""
    shapes = re.findall(r"\((\d+(?:, \d+)*)\)", line)
    assert shapes, line
    return shapes


def expect_stage(lines, operation, letters, shape):
    matches = [line for line in lines if line.strip().startswith(operation)]
    assert len(matches) == 1, (operation, lines)
    line = matches[0]
    assert letters in line, (letters, line)
    assert ", ".join(map(str, shape)) in shape_of(line), (shape, line)


def test_document_000_defaults():
    run = explain()
    assert run.returncode == 0, run.stderr
    out = run.stdout
    assert "MultiHeadAttention(embed_dim=100, num_heads=5, kdim=100, vdim=100" in out
    assert "head dim E/H = 100 / 5 = 20" in out
    lines = stage_lines(out)
    assert len(lines) == 15, lines
    # Document 000 prints these: X (2, 4, 100), transpose_qkv's reshape and permute
    # (2, 5, 4, 20), flattened to (10, 4, 20), and the output (2, 4, 100).
    expect_stage(lines, "query", "(B, Lq, E)", (2, 4, 100))
    expect_stage(lines, "key", "(B, Lk, kdim)", (2, 6, 100))
    expect_stage(lines, "W_q(query)", "(B, Lq, E)", (2, 4, 100))
    expect_stage(lines, "split W_q(query) into 5 heads", "(B, H, Lq, E/H)", (2, 5, 4, 20))
    expect_stage(lines, "split W_k(key) into 5 heads", "(B, H, Lk, E/H)", (2, 5, 6, 20))
    expect_stage(lines, "scores Q K^T / sqrt(20)", "(B, H, Lq, Lk)", (2, 5, 4, 6))
    expect_stage(lines, "weights V", "(B, H, Lq, E/H)", (2, 5, 4, 20))
    expect_stage(lines, "concat heads", "(B, Lq, E)", (2, 4, 100))
    expect_stage(lines, "W_o(concat)", "(B, Lq, E)", (2, 4, 100))
    expect_stage(lines, "attention weights averaged", "(B, Lq, Lk)", (2, 4, 6))
    split = next(line for line in lines if "split W_q" in line)
    assert "view" in split and "(10, 4, 20)" in split, split
    assert re.search(r"W_q\s+\(E, E\)\s+\(100, 100\)\s+in_proj_weight\[0:100\]", out), out
    assert re.search(r"W_o\s+\(E, E\)\s+\(100, 100\)\s+out_proj.weight", out), out
    assert "wrote" not in out  # no -o: text only


def test_other_sizes():
    run = explain("--embed-dim", "24", "--heads", "3", "--batch", "1", "--queries", "7",
                  "--keys", "2", "--kdim", "5", "--vdim", "11")
    assert run.returncode == 0, run.stderr
    lines = stage_lines(run.stdout)
    expect_stage(lines, "query", "(B, Lq, E)", (1, 7, 24))
    expect_stage(lines, "key", "(B, Lk, kdim)", (1, 2, 5))
    expect_stage(lines, "value", "(B, Lk, vdim)", (1, 2, 11))
    expect_stage(lines, "W_k(key)", "(B, Lk, E)", (1, 2, 24))
    expect_stage(lines, "split W_v(value) into 3 heads of 8", "(B, H, Lk, E/H)", (1, 3, 2, 8))
    expect_stage(lines, "scores Q K^T / sqrt(8)", "(B, H, Lq, Lk)", (1, 3, 7, 2))
    expect_stage(lines, "W_o(concat)", "(B, Lq, E)", (1, 7, 24))
    expect_stage(lines, "attention weights averaged", "(B, Lq, Lk)", (1, 7, 2))
    assert re.search(r"W_k\s+\(E, kdim\)\s+\(24, 5\)\s+k_proj_weight", run.stdout), run.stdout
    assert re.search(r"W_v\s+\(E, vdim\)\s+\(24, 11\)\s+v_proj_weight", run.stdout), run.stdout


@pytest.mark.parametrize("ext, magic", [(".png", b"\x89PNG\r\n\x1a\n"), (".svg", b"<?xml"),
                                        (".pdf", b"%PDF-")])
def test_out_writes_the_picture(tmp_path, ext, magic):
    path = tmp_path / f"network{ext}"
    run = explain("-o", str(path))
    assert run.returncode == 0, run.stderr
    assert "stages:" in run.stdout  # the text is printed as well
    assert run.stdout.rstrip().endswith(f"wrote {path}"), run.stdout[-200:]
    with open(path, "rb") as f:
        assert f.read(len(magic)) == magic


def test_heads_must_divide_embed_dim():
    run = explain("--embed-dim", "10", "--heads", "3")
    assert run.returncode == 1, (run.returncode, run.stdout)
    assert run.stderr.startswith("attn: "), run.stderr
    assert "num_heads 3 must divide embed_dim 10" in run.stderr, run.stderr
    assert run.stdout == "", "printed before the sizes were checked"


def test_sizes_must_be_positive():
    run = explain("--batch", "0")
    assert run.returncode == 1 and "batch must be positive, got 0" in run.stderr, run.stderr


def test_unknown_extension_prints_nothing(tmp_path):
    path = tmp_path / "network.bmp"
    run = explain("-o", str(path))
    assert run.returncode == 1, run.returncode
    assert run.stderr.startswith("attn: ") and "unknown extension '.bmp'" in run.stderr, run.stderr
    assert run.stdout == "" and not path.exists()
