"""How fast IREE's code for a one-row x @ W streams its weight at each row stride.

x[1,k] @ W[k,n] walks W down its rows, one tile of output columns at a time, so its rows
are n * 4 bytes apart. The sweep found products of 1,536 to 8,192 columns running at half
the rate of others of the same size; this times 15 column counts at two weight sizes (4.7
and 9.4 MB, in this CPU's L3) side by side, and prints per size the median rate of the
strides the cost model calls aliased (agentc/cost/profile.py, `ShapeRules`: a multiple of
`ROW_ALIASES`' period) against the others. `--gemm-rows 32,128` also times GEMMs of those
many rows (K = 768) at column counts on and off a multiple of 4 KiB of stride, which the
model does not price apart yet.

    python experiments/cost-model/row_strides.py [--target cpu] [--gemm-rows 32,128] [--out FILE.json]

Writes the rows as JSON (default build/results/row-strides.json).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

COLUMNS = (128, 256, 320, 384, 512, 640, 1024, 1152, 1536, 2048, 2560, 3072, 4096, 5120, 8192)
WEIGHT_BYTES = (4.7e6, 9.4e6)
GEMM_COLUMNS = (384, 512, 640, 1024, 1088, 1152, 1536, 1600, 2048, 2112, 3072, 3136)
GEMM_PERIOD = 4096  # bytes of row stride


def shapes() -> list[tuple[int, int, float]]:
    """(rows k, columns n, weight size) with k a multiple of 64 nearest the size."""
    return [(max(64, round(size / 4 / n / 64) * 64), n, size)
            for size in WEIGHT_BYTES for n in COLUMNS]


def measure(target: str, budget_s: float) -> list[dict]:
    from agentc.bench.artifacts import measure_cases
    from agentc.bench.sweep import Case
    from agentc.cost.profile import ROW_ALIASES, ShapeRules

    rules = ShapeRules(alias_bytes=ROW_ALIASES["llvm-cpu"][0])
    cases = [Case("gemm", "f32", (("m", 1), ("k", k), ("n", n))) for k, n, _ in shapes()]
    kernels, name = measure_cases(cases, target, budget_s, label="strides")
    times = {k["name"]: k for k in kernels}
    rows = []
    for k, n, size in shapes():
        entry = times[f"gemm_f32_1x{k}x{n}"]
        rows.append({"target": target, "device": name, "k": k, "n": n, "weight_mb": size / 1e6,
                     "row_stride_bytes": 4 * n, "us": entry["measured_s"] * 1e6,
                     "gb_s": entry["bytes"] / entry["measured_s"] / 1e9,
                     "judged_aliased": rules.variant("vecmat", "f32", n) == ".aliased"})
        r = rows[-1]
        print(f"{target:7s} {size / 1e6:4.1f} MB  1 x {k:5d} x {n:5d}  stride {4 * n:6d} B "
              f"{r['us']:9.1f} us {r['gb_s']:6.1f} GB/s  aliased: {'yes' if r['judged_aliased'] else 'no'}")
    for size in WEIGHT_BYTES:
        rate = {flag: statistics.median(r["gb_s"] for r in rows
                                        if r["weight_mb"] == size / 1e6 and r["judged_aliased"] is flag)
                for flag in (True, False)}
        print(f"{target:7s} {size / 1e6:4.1f} MB: median {rate[False]:.1f} GB/s at other strides, "
              f"{rate[True]:.1f} at aliased ones (x{rate[False] / rate[True]:.2f})")
    return rows


def measure_gemms(target: str, budget_s: float, rows: list[int]) -> list[dict]:
    """GEMMs x[m,768] @ W[768,n]: GFLOP/s at each column count, with and without a row stride
    that is a multiple of GEMM_PERIOD."""
    from agentc.bench.artifacts import measure_cases
    from agentc.bench.sweep import Case

    shapes = [(m, 768, n) for m in rows for n in GEMM_COLUMNS]
    cases = [Case("gemm", "f32", (("m", m), ("k", k), ("n", n))) for m, k, n in shapes]
    kernels, name = measure_cases(cases, target, budget_s, label="gemm-strides")
    times = {k["name"]: k for k in kernels}
    out = []
    for m, k, n in shapes:
        entry = times[f"gemm_f32_{m}x{k}x{n}"]
        out.append({"target": target, "device": name, "m": m, "k": k, "n": n,
                    "row_stride_bytes": 4 * n, "us": entry["measured_s"] * 1e6,
                    "gflop_s": entry["flops"] / entry["measured_s"] / 1e9,
                    "stride_multiple_of_period": 4 * n % GEMM_PERIOD == 0})
        r = out[-1]
        print(f"{target:7s} {m:4d} x {k} x {n:5d}  {r['us']:9.1f} us {r['gflop_s']:6.1f} GFLOP/s"
              f"{'  stride a multiple of 4 KiB' if r['stride_multiple_of_period'] else ''}")
    for m in rows:
        rate = {flag: statistics.median(r["gflop_s"] for r in out
                                        if r["m"] == m and r["stride_multiple_of_period"] is flag)
                for flag in (True, False)}
        print(f"{target:7s} {m} rows: median {rate[False]:.1f} GFLOP/s at other strides, "
              f"{rate[True]:.1f} at multiples of 4 KiB (x{rate[False] / rate[True]:.2f})")
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--target", action="append", choices=("cpu", "vulkan"))
    p.add_argument("--budget", type=float, default=0.5, help="seconds of calls per kernel")
    p.add_argument("--gemm-rows", help="also GEMMs of these many rows, comma-separated")
    p.add_argument("--out", default="build/results/row-strides.json")
    args = p.parse_args(argv)
    rows = [r for t in args.target or ["cpu"] for r in measure(t, args.budget)]
    if args.gemm_rows:
        m = [int(x) for x in args.gemm_rows.split(",")]
        rows += [r for t in args.target or ["cpu"] for r in measure_gemms(t, args.budget, m)]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
