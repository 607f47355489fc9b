#!/usr/bin/env python3
"""attn against PyTorch on this CPU: the same inputs, the same thread count, one process.

Times attn.scaled_dot_product_attention against torch's (1.13's private
torch.nn.functional._scaled_dot_product_attention, which on a CPU computes the
L x L scores, their softmax and the product with V), and attn.MultiheadAttention
against torch.nn.MultiheadAttention holding the same weights, in eval mode.
Each case alternates the two libraries, each call after a cache flush, and
prints the median of --repeats calls, so that both are measured under the same
load. Every case first prints how far apart the two outputs are, and stops if
they differ by more than float32 rounding allows (1e-4, norm-wise).

    scripts/test   # or any build of the release preset, which builds the module
    PYTHONPATH=build/release/python /usr/bin/python3 bench/compare_torch.py --threads 2
    ... --lengths 1024,4096 --dims 64,128 --causal no --peak 234   # % of a peak from `attn bench`

GFLOP/s counts what bench/support/flops.hpp counts: 4 B H (allowed pairs) D for
attention (a causal mask allows L (L + 1) / 2 pairs per head), plus 8 B L E^2
for the module's four projections. Memory bounds L: torch keeps every head's
scores and their softmax, 2 x 4 B H L^2 bytes (4 GiB at B = 1, H = 8, L = 8192).

Both libraries get --threads: torch.set_num_threads and attn.set_num_threads for
their own threads, and openblas_set_num_threads for every OpenBLAS loaded (torch
runs its products there, attn its projections).
"""

import argparse
import ctypes
import os
import statistics
import sys
import time

# OpenBLAS reads OPENBLAS_CORETYPE once, when torch loads it; a pinned core type
# would measure torch below its best. Restart without it, as `attn bench` does.
if os.environ.get("OPENBLAS_CORETYPE"):
    pinned = os.environ.pop("OPENBLAS_CORETYPE")
    print(f"note: OPENBLAS_CORETYPE={pinned} pins OpenBLAS's kernels; restarting without it", flush=True)
    os.execv(sys.executable, [sys.executable] + sys.argv)

import numpy as np  # noqa: E402
import torch  # noqa: E402

import attn  # noqa: E402

FLUSH = np.ones(16 << 20, dtype=np.float32)  # 64 MiB: more than the caches


def flush_caches():
    FLUSH[::16] += 1.0  # a write to every cache line


def race(attn_call, torch_call, repeats):
    """(attn ms, torch ms): medians of calls taken in turn."""
    attn_call()
    torch_call()
    attn_times, torch_times = [], []
    for _ in range(repeats):
        for call, times in ((attn_call, attn_times), (torch_call, torch_times)):
            flush_caches()
            start = time.perf_counter()
            call()
            times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(attn_times), statistics.median(torch_times)


def relative_error(got, want):
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    return float(np.linalg.norm(got - want) / max(np.linalg.norm(want), 1e-300))


def check_agreement(diff, case):
    if not diff <= 1e-4:
        sys.exit(f"{case}: attn and torch differ by {diff:.1e} (relative); not timing a wrong result")


def attention_flops(batch, heads, length, dim, causal):
    """bench/support/flops.hpp's attention_flops."""
    pairs = length * (length + 1) // 2 if causal else length * length
    return 4.0 * batch * heads * pairs * dim


def percent(gflops, peak):
    return f"{100 * gflops / peak:6.1f}%" if peak else "      -"


def compare_sdpa(args, gen):
    print(f"\nscaled_dot_product_attention, B = {args.batch}, H = {args.heads}, {args.threads} threads, "
          f"median of {args.repeats}")
    print(f"{'L':>6} {'D':>4} {'causal':>6} {'attn ms':>9} {'GFLOP/s':>8} {'% peak':>7} "
          f"{'torch ms':>9} {'GFLOP/s':>8} {'% peak':>7} {'x torch':>8} {'rel. diff':>9}")
    for dim in args.dims:
        for causal in args.causal_values:
            for length in args.lengths:
                shape = (args.batch, args.heads, length, dim)
                q, k, v = (gen.standard_normal(shape, dtype=np.float32) for _ in range(3))
                tq, tk, tv = (torch.from_numpy(x) for x in (q, k, v))
                with torch.inference_mode():
                    want = torch.nn.functional._scaled_dot_product_attention(tq, tk, tv, None, 0.0, False, causal)[0]
                    diff = relative_error(attn.scaled_dot_product_attention(q, k, v, is_causal=causal), want.numpy())
                    del want
                    attn_ms, torch_ms = race(
                        lambda: attn.scaled_dot_product_attention(q, k, v, is_causal=causal),
                        lambda: torch.nn.functional._scaled_dot_product_attention(tq, tk, tv, None, 0.0, False,
                                                                                  causal),
                        args.repeats)
                check_agreement(diff, f"scaled_dot_product_attention L={length} D={dim} causal={causal}")
                flops = attention_flops(args.batch, args.heads, length, dim, causal)
                a, t = flops / attn_ms / 1e6, flops / torch_ms / 1e6
                print(f"{length:>6} {dim:>4} {'yes' if causal else 'no':>6} {attn_ms:>9.2f} {a:>8.1f} "
                      f"{percent(a, args.peak)} {torch_ms:>9.2f} {t:>8.1f} {percent(t, args.peak)} "
                      f"{torch_ms / attn_ms:>8.2f} {diff:>9.1e}", flush=True)


def compare_mha(args, gen):
    embed = args.heads * args.mha_head_dim
    print(f"\nMultiheadAttention, self-attention, embed_dim = {embed}, num_heads = {args.heads}, "
          f"batch_first, eval, need_weights=False, B = {args.batch}, {args.threads} threads, "
          f"median of {args.repeats}")
    print(f"{'L':>6} {'causal':>6} {'attn ms':>9} {'GFLOP/s':>8} {'torch ms':>9} {'GFLOP/s':>8} "
          f"{'x torch':>8} {'rel. diff':>9}")
    torch.manual_seed(0)
    theirs = torch.nn.MultiheadAttention(embed, args.heads, batch_first=True).eval()
    ours = attn.MultiheadAttention(embed_dim=embed, num_heads=args.heads, batch_first=True).eval()
    ours.load_state_dict({name: p.detach().numpy() for name, p in theirs.state_dict().items()})
    for causal in args.causal_values:
        for length in args.lengths:
            x = gen.standard_normal((args.batch, length, embed), dtype=np.float32)
            tx = torch.from_numpy(x)
            # torch 1.13's module has no is_causal: the same mask as a boolean
            # attn_mask, True where a key is masked out.
            blocked = torch.ones(length, length, dtype=torch.bool).triu(1) if causal else None
            with torch.inference_mode():
                want = theirs(tx, tx, tx, need_weights=False, attn_mask=blocked)[0].numpy()
                diff = relative_error(ours(x, x, x, need_weights=False, is_causal=causal)[0], want)
                attn_ms, torch_ms = race(
                    lambda: ours(x, x, x, need_weights=False, is_causal=causal),
                    lambda: theirs(tx, tx, tx, need_weights=False, attn_mask=blocked),
                    args.repeats)
            check_agreement(diff, f"MultiheadAttention L={length} causal={causal}")
            flops = (attention_flops(args.batch, args.heads, length, args.mha_head_dim, causal)
                     + 8.0 * args.batch * length * embed * embed)
            print(f"{length:>6} {'yes' if causal else 'no':>6} {attn_ms:>9.2f} {flops / attn_ms / 1e6:>8.1f} "
                  f"{torch_ms:>9.2f} {flops / torch_ms / 1e6:>8.1f} {torch_ms / attn_ms:>8.2f} {diff:>9.1e}",
                  flush=True)


def loaded_blas():
    """The BLAS libraries this process has mapped (torch's and attn's)."""
    with open("/proc/self/maps") as maps:
        paths = {line.split()[-1] for line in maps if "blas" in line.lower() and "/" in line}
    return sorted(os.path.realpath(p) for p in paths) or ["none found"]


def limit_openblas(threads):
    """Sets every loaded OpenBLAS's pool to `threads`; says what each now has."""
    counts = []
    for path in loaded_blas():
        lib = ctypes.CDLL(path)  # the loaded instance, not a second copy
        if hasattr(lib, "openblas_set_num_threads"):
            lib.openblas_set_num_threads(threads)
            counts.append(f"{os.path.basename(path)} {lib.openblas_get_num_threads()}")
    return counts or ["no OpenBLAS loaded"]


def cpu_model():
    with open("/proc/cpuinfo") as info:
        for line in info:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return "unknown CPU"


def int_list(text):
    return [int(x) for x in text.split(",")]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lengths", type=int_list, default=[512, 1024, 2048, 4096], help="L, comma-separated")
    parser.add_argument("--dims", type=int_list, default=[64, 128], help="head dims D, comma-separated")
    parser.add_argument("--heads", type=int, default=8)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--causal", choices=["both", "yes", "no"], default="both")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--mha-head-dim", type=int, default=64, help="the module's E / H (0: skip the module)")
    parser.add_argument("--peak", type=float, default=0.0,
                        help="FMA peak in GFLOP/s for the thread count (from `attn bench`), for % peak")
    args = parser.parse_args()
    args.causal_values = {"both": [False, True], "yes": [True], "no": [False]}[args.causal]

    torch.set_num_threads(args.threads)
    attn.set_num_threads(args.threads)
    print(f"machine: {cpu_model()}, {os.cpu_count()} CPUs")
    print(f"torch {torch.__version__}, numpy {np.__version__}; {args.threads} threads each "
          f"(torch.set_num_threads, attn.set_num_threads); OpenBLAS threads: {', '.join(limit_openblas(args.threads))}")
    gen = np.random.default_rng(0)
    compare_sdpa(args, gen)
    if args.mha_head_dim > 0:
        compare_mha(args, gen)
    print("\nx torch: torch's ms over attn's; rel. diff: ||attn - torch|| / ||torch|| of the outputs")
    if args.mha_head_dim > 0 and args.causal != "no":
        print("torch's causal module rows take its slower general path: 1.13's fast path refuses an attn_mask")


if __name__ == "__main__":
    main()
