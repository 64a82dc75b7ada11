"""How much slower IREE's code is when a linear layer's output columns do not fill whole tiles.

Each pair is one `F.linear` (x[m,k] @ W[n,k]^T, exported as agentc's models export it) at
a column count that is a multiple of 64 and one that is not, at about the same FLOPs. All
kernels of a target are timed round-robin in one process; per pair it prints both times,
how much longer the ragged one takes per FLOP, and whether the cost model's tilings call
it ragged (agentc/cost/profile.py, `ColumnTile`): 64-wide tiles (IREE's SPIR-V), and
IREE's CPU tiles (the largest divisor of the columns up to 64) at 16 lanes. 1,100 columns
(CPU tiles of 55) and 1,200 (tiles of 60) test the CPU rule on counts the sweep lacks.

    python experiments/cost-model/ragged_columns.py [--target cpu --target vulkan] [--out FILE.json]
    python experiments/cost-model/ragged_columns.py --configs

Writes the rows as JSON (default build/results/ragged-columns.json). `--configs` measures
nothing: it prints, for each one-row column count, the tiles iree-compile's CPU
configuration chose (the workgroup's columns and the vector's) beside the CPU rule's
judgement.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

# (m, k, columns off the tile, columns on it)
PAIRS = ((1, 384, 1000, 1024), (1, 384, 1008, 1024), (1, 384, 1056, 1088),
         (1, 384, 10000, 10240), (1, 64, 100000, 100352), (128, 384, 1000, 1024),
         (128, 384, 1056, 1088), (1, 384, 1100, 1088), (1, 384, 1200, 1216))


def measure(target: str, budget_s: float) -> list[dict]:
    from agentc.bench.artifacts import measure_cases
    from agentc.bench.sweep import Case
    from agentc.cost.profile import COLUMN_TILES

    rules = {"gpu_64": COLUMN_TILES["vulkan-spirv"][0], "cpu_64x16": COLUMN_TILES["llvm-cpu"][0]}

    shapes = dict.fromkeys((m, k, n) for m, k, *columns in PAIRS for n in columns)
    cases = [Case("linear", "f32", (("m", m), ("k", k), ("n", n))) for m, k, n in shapes]
    kernels, name = measure_cases(cases, target, budget_s, label="ragged")
    times = {k["name"]: (k["measured_s"], k["flops"]) for k in kernels}
    rows = []
    for m, k, ragged, aligned in PAIRS:
        (tr, fr), (ta, fa) = (times[f"linear_f32_{m}x{k}x{n}"] for n in (ragged, aligned))
        rows.append({"target": target, "device": name, "m": m, "k": k, "ragged": ragged,
                     "aligned": aligned, "ragged_us": tr * 1e6, "aligned_us": ta * 1e6,
                     "per_flop_ratio": (tr / fr) / (ta / fa),
                     "judged_ragged": {name: rule.ragged(ragged) for name, rule in rules.items()}})
        judged = " ".join(f"{name}={'yes' if v else 'no'}" for name, v in rows[-1]["judged_ragged"].items())
        print(f"{target:7s} {m:4d} x {k:4d} -> {ragged:6d} {tr * 1e6:9.1f} us   -> {aligned:6d} "
              f"{ta * 1e6:9.1f} us   ragged per FLOP x{rows[-1]['per_flop_ratio']:.2f}   judged ragged: {judged}")
    return rows


def cpu_tiles(m: int, k: int, n: int) -> list[str]:
    """The llvm-cpu distribution and vector tiles iree-compile chooses for `F.linear` of
    that shape (its configuration, before any code is generated)."""
    import re

    from agentc.bench.dispatch_grid import configuration
    from agentc.bench.torch_kernels import linear
    from agentc.devices import KINDS

    text = configuration(linear("l", m, k, n, "f32"), "llvm-cpu", KINDS["cpu"].compile_flags)
    return re.findall(r"distribution = \[[^\]]*\], vector_common_parallel = \[[^\]]*\]", text)


def print_configs() -> None:
    from agentc.cost.profile import COLUMN_TILES

    rule = COLUMN_TILES["llvm-cpu"][0]
    shapes = dict.fromkeys((m, k, n) for m, k, *columns in PAIRS for n in columns if m == 1)
    for m, k, n in shapes:
        print(f"{m} x {k:4d} -> {n:6d}   judged ragged: {'yes' if rule.ragged(n) else 'no ':3s}   "
              f"iree: {'; '.join(cpu_tiles(m, k, n))}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--target", action="append", choices=("cpu", "vulkan", "cuda"))
    p.add_argument("--budget", type=float, default=0.5, help="seconds of calls per kernel")
    p.add_argument("--out", default="build/results/ragged-columns.json")
    p.add_argument("--configs", action="store_true",
                   help="print IREE's CPU tiles per column count; measure nothing")
    args = p.parse_args(argv)
    if args.configs:
        print_configs()
        return 0

    from agentc.devices import usable

    targets = args.target or [t for t in ("cpu", "vulkan") if t in usable()]
    rows = [r for t in targets for r in measure(t, args.budget)]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
