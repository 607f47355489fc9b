"""`attn heatmap FILE.npy`: arrays that numpy writes, in every dtype, order and format
version the reader takes, drawn as pictures whose cells are read back pixel by pixel;
and the errors, each with exit status 1 and a message naming the file and problem.

Cells are found without knowing the layout: a matrix and its complement (1 - m) give
pictures that differ exactly inside the panel, since every cell swaps between the
colormap's two ends, while the labels and the colorbar stay the same.
"""

import subprocess

import numpy as np
import pytest

from png_reader import read_png
from attn_tool import attn_bin

N = 4  # the matrices are N x N
CELL = 8  # --cell-pixels
COLOURS = {  # the ends of each colormap, as tests/test_plot.cpp pins them
    "viridis": {"low": (0x44, 0x01, 0x54), "high": (0xFD, 0xE7, 0x25)},
    "reds": {"low": (0xFF, 0xF5, 0xF0), "high": (0x67, 0x00, 0x0D)},
}


def attn_heatmap(*args):
    return subprocess.run([attn_bin(), "heatmap", *map(str, args)], capture_output=True,
                          text=True, timeout=120)


def save(path, array, version=None):
    """Writes `array` as numpy does; version None lets numpy choose (1.0 when it fits)."""
    with open(path, "wb") as f:
        np.lib.format.write_array(f, array, version=version)
    return path


def shift():
    """1 at (i, i + 1 mod N), else 0: not symmetric, so a transposed read shows."""
    m = np.zeros((N, N))
    m[np.arange(N), (np.arange(N) + 1) % N] = 1
    return m


def complement(m):
    return ~m if m.dtype == bool else (1 - m).astype(m.dtype)


def render(tmp_path, name, array, *options, version=None, cell=CELL):
    npy = save(tmp_path / f"{name}.npy", array, version)
    png = tmp_path / f"{name}.png"
    run = attn_heatmap(npy, "-o", png, "--cell-pixels", cell, *options)
    assert run.returncode == 0, run.stderr
    return read_png(png), run.stdout


def differing_box(a, b):
    """(x0, y0, x1, y1): the smallest box holding every pixel where a and b differ."""
    assert (a.width, a.height) == (b.width, b.height)
    xs, ys = [], []
    for y in range(a.height):
        for x in range(a.width):
            if a.rgb(x, y) != b.rgb(x, y):
                xs.append(x)
                ys.append(y)
    assert xs, "the two pictures are equal"
    return min(xs), min(ys), max(xs) + 1, max(ys) + 1


def check_cells(png, box, matrix, colormap):
    """Every cell's centre pixel has the high colour where matrix is 1, else the low."""
    x0, y0, x1, y1 = box
    assert (x1 - x0, y1 - y0) == (N * CELL, N * CELL), box
    for i in range(N):
        for j in range(N):
            want = COLOURS[colormap]["high" if matrix[i, j] else "low"]
            got = png.rgb(x0 + j * CELL + CELL // 2, y0 + i * CELL + CELL // 2)
            assert got == want, f"cell ({i}, {j}): {got}, want {want}"


# (id, array, format version): every way numpy writes a matrix that the reader takes.
VARIANTS = [
    ("float32", shift().astype("<f4"), None),
    ("float64", shift().astype("<f8"), None),
    ("float16", shift().astype("<f2"), None),
    ("big-endian float32", shift().astype(">f4"), None),
    ("fortran order", np.asfortranarray(shift().astype("<f4")), None),
    ("fortran order float64", np.asfortranarray(shift().astype(">f8")), (2, 0)),
    ("version 2.0", shift().astype("<f4"), (2, 0)),
    ("version 3.0", shift().astype("<f4"), (3, 0)),
    ("bool", shift().astype(bool), None),
    ("int64", shift().astype("<i8"), (3, 0)),
]


@pytest.mark.parametrize("array,version", [(a, v) for _, a, v in VARIANTS],
                         ids=[name for name, _, _ in VARIANTS])
def test_cells_show_the_matrix(tmp_path, array, version):
    if array.ndim == 2 and not array.flags.c_contiguous:
        # The file really is in Fortran order.
        with open(save(tmp_path / "probe.npy", array, version), "rb") as f:
            assert b"'fortran_order': True" in f.read(200)
    png, stdout = render(tmp_path, "m", array, version=version)
    other, _ = render(tmp_path, "complement", complement(array), version=version)
    check_cells(png, differing_box(png, other), array, "viridis")
    assert stdout.startswith(f"wrote {tmp_path / 'm.png'}\n"), stdout
    assert f"1 x 1 panel of {N} x {N} (Queries x Keys); viridis colour scale from 0 to 1" in stdout


def test_diagonal_in_reds(tmp_path):
    eye = np.eye(N, dtype=np.float32)
    png, stdout = render(tmp_path, "eye", eye, "--colormap", "reds")
    other, _ = render(tmp_path, "not-eye", 1 - eye, "--colormap", "reds")
    check_cells(png, differing_box(png, other), eye, "reds")
    assert "reds colour scale" in stdout


def test_picture_size_follows_cells_and_panels(tmp_path):
    def size(name, array, *options, cell=CELL):
        png, stdout = render(tmp_path, name, array, *options, cell=cell)
        return png.width, png.height, stdout

    w1, h1, _ = size("one", shift().astype("<f4"))
    w_big, h_big, _ = size("bigger-cells", shift().astype("<f4"), cell=2 * CELL)
    # Twice the cell size: the panel grows by N * CELL in each direction.
    assert (w_big - w1, h_big - h1) == (N * CELL, N * CELL)

    # (rows, Lq, Lk) is a column of panels; (rows, cols, Lq, Lk) a grid.
    w3, h3, stdout3 = size("column", np.stack([shift(), np.eye(N)]).astype("<f4"))
    assert w3 == w1 and h3 > h1 + N * CELL, (w1, h1, w3, h3)
    assert "2 x 1 panels of 4 x 4" in stdout3
    grid = np.broadcast_to(shift(), (2, 3, N, N)).astype("<f4")
    titles = ",".join(f"Head {k}" for k in range(6))
    w4, h4, stdout4 = size("grid", grid, "--titles", titles)
    assert w4 > w1 + 2 * N * CELL and h4 >= h3, (w4, h4)
    assert "2 x 3 panels of 4 x 4 (Queries x Keys) titled Head 0, Head 1" in stdout4


def test_outputs_and_options(tmp_path):
    npy = save(tmp_path / "weights.npy", shift().astype("<f4"))
    # Without -o: the input's name with .png, next to it.
    run = attn_heatmap(npy)
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith(f"wrote {tmp_path / 'weights.png'}\n")
    assert read_png(tmp_path / "weights.png", pixels=False).width > N

    svg = tmp_path / "w.svg"
    run = attn_heatmap(npy, "-o", svg, "--xlabel", "Source", "--ylabel", "Target",
                       "--x-tokens", "a,b,c,d", "--y-tokens", "w,x,y,z", "--vmin", "-1",
                       "--vmax", "2", "--max-panel-pixels", "2")
    assert run.returncode == 0, run.stderr
    description = run.stdout.splitlines()[1]
    assert description == ("Attention weights: 1 x 1 panel of 4 x 4 (Target x Source); viridis "
                           "colour scale from -1 to 2; 4 x 4 shown as 2 x 2 block means")
    text = svg.read_text()
    assert "<svg" in text and f"<title>{description}</title>" in text

    pdf = tmp_path / "w.pdf"
    assert attn_heatmap(npy, "--out", pdf).returncode == 0
    assert pdf.read_bytes().startswith(b"%PDF-")


@pytest.mark.parametrize("options,message", [
    (["--x-tokens", "a,b"], "attn: [heatmaps] x_tokens: 2 labels for 4 keys (Lk)"),
    (["--y-tokens", "a,b,c,d,e"], "attn: [heatmaps] y_tokens: 5 labels for 4 queries (Lq)"),
    (["--titles", "one,two"], "attn: [heatmaps] titles: 2 titles for 1 panels"),
    (["--vmin", "1", "--vmax", "0"], "attn: [heatmaps] vmin 1 must be less than vmax 0"),
    (["-o", "w.gif"], "unknown extension '.gif'; expected .png, .svg or .pdf"),
])
def test_options_that_do_not_fit(tmp_path, options, message):
    npy = save(tmp_path / "weights.npy", shift().astype("<f4"))
    run = attn_heatmap(npy, *[str(tmp_path / o) if o.endswith(".gif") else o for o in options])
    assert run.returncode == 1, (run.returncode, run.stderr)
    assert message in run.stderr, run.stderr
    assert not (tmp_path / "weights.png").exists()


def test_options_that_cli_refuses(tmp_path):
    npy = save(tmp_path / "weights.npy", shift().astype("<f4"))
    for options in (["--colormap", "jet"], ["--cell-pixels", "-1"], ["--max-panel-pixels", "0"]):
        run = attn_heatmap(npy, *options)
        assert run.returncode != 0 and options[0] in run.stderr, (options, run.stderr)
    run = attn_heatmap()
    assert run.returncode != 0 and "FILE is required" in run.stderr, run.stderr


def _not_npy(path):
    path.write_bytes(b"PK\x03\x04 a zip")
    return path


def _truncated(path):
    data = save(path, shift().astype("<f4")).read_bytes()
    path.write_bytes(data[:-1])
    return path


# (name, how the file is made, what the message says after "attn: [read_npy] PATH: ").
BAD_FILES = [
    ("missing", lambda p: p, "cannot open the file: No such file or directory"),
    ("truncated", _truncated, "has 63 bytes of data, shape (4, 4) of <f4 needs 64"),
    ("complex64", lambda p: save(p, np.eye(N, dtype=np.complex64)),
     "unsupported dtype '<c8' (complex numbers); supported: bool |b1;"),
    ("strings", lambda p: save(p, np.array([["a", "bc"], ["d", "e"]])),
     "unsupported dtype '<U2' (unicode strings)"),
    ("not npy", _not_npy,
     "not a .npy file: it starts with 'PK\\x03\\x04 a', not '\\x93NUMPY'"),
]


@pytest.mark.parametrize("make,problem", [(m, p) for _, m, p in BAD_FILES],
                         ids=[name for name, _, _ in BAD_FILES])
def test_files_that_cannot_be_drawn(tmp_path, make, problem):
    path = tmp_path / "weights.npy"
    make(path)
    run = attn_heatmap(path)
    assert run.returncode == 1, (run.returncode, run.stderr)
    assert run.stderr.startswith(f"attn: [read_npy] {path}: {problem}"), run.stderr
    assert run.stdout == ""
    assert not (tmp_path / "weights.png").exists()


def test_arrays_that_are_no_matrices(tmp_path):
    for name, array, message in [
        ("vector", np.ones(4, np.float32), "expected (Lq, Lk), (rows, Lq, Lk) or (rows, cols, "
                                           "Lq, Lk), got rank 1"),
        ("empty", np.ones((0, 4), np.float32), "nothing to show in an empty tensor"),
        ("nan", np.array([[0, np.nan]], np.float32), "non-finite value nan at (0, 1)"),
    ]:
        run = attn_heatmap(save(tmp_path / f"{name}.npy", array))
        assert run.returncode == 1 and f"attn: [heatmaps] weights: {message}" in run.stderr, \
            (name, run.stderr)
