"""`attn bench`: a tiny run prints the machine, the peak, the checks and the table,
one row per case, and draws the chart; bad options fail with exit status != 0 and a
message. The timings themselves are not checked: they depend on the machine."""

import os
import re
import subprocess

from png_reader import read_png
from attn_tool import attn_bin

HEADER = ["kernel", "ran", "L", "D", "causal", "threads", "ms", "GFLOP/s", "% peak",
          "x baseline", "x causal"]


def attn_bench(*args, env=None):
    return subprocess.run([attn_bin(), "bench", *map(str, args)], capture_output=True, text=True,
                          timeout=300, env=env)


def table(stdout):
    """The rows after the header line, split on whitespace ('% peak' is one column)."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.split()[:2] == ["kernel", "ran"])
    rows = []
    for line in lines[start + 1:]:
        if line.startswith(("x baseline:", "note:", "wrote ", "Line chart")) or not line.strip():
            break
        rows.append(line.split())
    return lines[start], rows


def test_small_run_prints_the_table_and_draws_the_chart(tmp_path):
    chart = tmp_path / "out.png"
    run = attn_bench("--lengths", "64,128", "--dims", "16", "--threads", "1", "--repeats", 2,
                     "--kernels", "reference,baseline_full", "--chart", chart)
    assert run.returncode == 0, run.stderr
    out = run.stdout
    for line in ["date: ", "machine: ", "OpenBLAS: corename ", "peak: Highway target "]:
        assert line in out, out
    assert "check: baseline_full D = 16 at L = 128: relative error" in out
    header, rows = table(out)
    for name in HEADER:
        assert name in header
    # 2 kernels x 2 lengths x causal and not.
    assert len(rows) == 8, out
    kernels = sorted({r[0] for r in rows})
    assert kernels == ["baseline_full", "reference"]
    assert sorted({int(r[2]) for r in rows}) == [64, 128]
    # The kernels of a case run side by side, but the table is by kernel, in the order
    # --kernels gives, then causal and L.
    assert [(r[0], r[4], int(r[2])) for r in rows] == [
        (k, c, n) for k in ("reference", "baseline_full") for c in ("no", "yes") for n in (64, 128)], out
    # The peak is probed before and after the cases; "% peak" divides by the higher.
    before = float(re.search(r"1 thread ([0-9.]+) GFLOP/s", out).group(1))
    after = float(re.search(r"peak again, 1 thread: ([0-9.]+) GFLOP/s", out).group(1))
    for r in rows:
        ms, gflops, peak = float(r[6]), float(r[7]), float(r[8].rstrip("%"))
        assert ms > 0 and gflops > 0 and peak > 0
        assert abs(peak - 100 * gflops / max(before, after)) < 0.1 + 0.01 * peak, (r, before, after)
    # The reference is compared with the baseline; causal rows with the non-causal ones.
    reference_causal = [r for r in rows if r[0] == "reference" and r[4] == "yes"]
    assert all(r[9] != "-" and r[10] != "-" for r in reference_causal)
    assert f"wrote {chart}" in out
    image = read_png(chart)
    assert image.width > 100 and image.height > 100


def test_openblas_coretype_is_dropped_by_a_restart(tmp_path):
    env = dict(os.environ, OPENBLAS_CORETYPE="Haswell")
    run = attn_bench("--lengths", "32", "--dims", "8", "--threads", "1", "--repeats", 1,
                     "--kernels", "baseline_full", "--causal", "no", env=env)
    assert run.returncode == 0, run.stderr
    assert "note: OPENBLAS_CORETYPE=Haswell pins OpenBLAS's kernels; restarting" in run.stdout
    assert run.stdout.count("date: ") == 1
    _, rows = table(run.stdout)
    assert len(rows) == 1


def test_memory_of_one_forward():
    run = attn_bench("--lengths", "32", "--dims", "8", "--threads", "1", "--repeats", 1,
                     "--kernels", "baseline_blocked", "--causal", "no", "--memory",
                     "--memory-length", 256, "--memory-dim", 16)
    assert run.returncode == 0, run.stderr
    assert "kernel at B = 1, H = 8, L = 256, D = 16 adds " in run.stdout, run.stdout
    assert "memory: the baselines' scores at that size, per thread: full 0 MiB" in run.stdout


def test_bad_options_fail():
    for args in [["--kernels", "nope"], ["--causal", "maybe"], ["--lengths", "0"],
                 ["--lengths", "abc"], ["--repeats", "0"]]:
        run = attn_bench(*args)
        assert run.returncode != 0, args
        assert run.stderr.strip(), args
