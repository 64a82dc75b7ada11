"""Checks the bench's one-row kernels' results on the Vulkan device against NumPy.

On lavapipe, llvmpipe's shader compiler stops every loop of an invocation after 65,535
iterations in all (gallivm's LP_MAX_TGSI_LOOP_ITERATIONS, shared by all loops of a
shader). IREE's baseline SPIR-V target has no subgroups, so it compiles a reduction over
one row into a workgroup of one invocation that loops over the whole row: past that count
the result is silently wrong (a 1 x 4M sum returns the sum of its first 65,536 elements).
This compiles the sweep's sum_rows, sample, softmax and topk kernels, and one-row
softmaxes either side of 65,535 / 3, for vulkan (optionally with extra IREE flags), runs them on positive inputs whose last element of each row is far
larger than the rest (a loop cut short misses it) and prints, per kernel, OK or WRONG with
the dispatches' workgroup sizes.

    python experiments/cost-model/vulkan_results_check.py [--iree-flag=FLAG ...] [--out FILE.json]

Writes the results as JSON (default build/results/vulkan-results-check.json).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

OPS = ("sum_rows", "sample", "softmax", "topk")
# Beside the sweep: one-row softmaxes either side of 65,535 / 3, which tell whether the
# scaling pass shares the loop budget with the two reductions (it does).
EDGES = (("softmax", (("rows", 1), ("cols", 20000))), ("softmax", (("rows", 1), ("cols", 30000))))


def correct(op: str, result: list[np.ndarray], x: np.ndarray, top: int) -> bool:
    x = x.astype(np.float64)
    if op == "sum_rows":  # float32 rounding stays far below the last element's share
        return bool(np.allclose(result[0].ravel(), x.sum(-1).ravel(), rtol=1e-3))
    if op == "softmax":
        e = np.exp(x - x.max(-1, keepdims=True))
        return bool(np.allclose(result[0], e / e.sum(-1, keepdims=True), atol=1e-5))
    return int(result[0].ravel()[0]) == top  # sample, topk: the first index is the maximum


def check(device, root: Path, k: dict, rng) -> bool:
    """Runs one compiled kernel on positive inputs whose rows end in a far larger element;
    its device buffers are freed on return, while the device is still open."""
    from agentc.bench.timing import random_input

    fn = device.load((root / k["vmfb"]).read_bytes(), k["function"])
    inputs = [random_input(shape, dtype, rng) for shape, dtype in k["inputs"]]
    x = inputs[0]
    np.abs(x, out=x)
    top = x.shape[-1] - 1
    x[..., top] = 1e6 if k["op"] == "sum_rows" else 50.0
    out = fn(*[device.upload(a) for a in inputs])
    result = [device.readback(o) for o in (out if isinstance(out, (list, tuple)) else [out])]
    return correct(k["op"], result, x, top)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--iree-flag", action="append", default=[], dest="flags")
    p.add_argument("--out", default="build/results/vulkan-results-check.json")
    args = p.parse_args(argv)

    from agentc.bench.artifacts import build
    from agentc.bench.dispatch_grid import workgroup_sizes
    from agentc.bench.sweep import FULL, Case
    from agentc.bench.timing import Device
    from agentc.devices import KINDS, usable

    if "vulkan" not in usable():
        print("no Vulkan device (install mesa-vulkan-drivers)", file=sys.stderr)
        return 1
    kind = KINDS["vulkan"]
    # All of them, also those the vulkan sweep leaves out.
    cases = [c for c in FULL if c.op in OPS] + [Case(op, "f32", p) for op, p in EDGES]
    flags = (*kind.compile_flags, *args.flags)
    rows = []
    with tempfile.TemporaryDirectory(prefix="vulkan-check-") as tmp:
        manifest = build(cases, "vulkan", tmp, extra_flags=args.flags, variant="check")
        device = Device("vulkan", staged_readback=kind.staged_readback)
        name = device.info.get("name", "vulkan")
        print(f"{name}; flags: {' '.join(args.flags) or '(none)'}")
        rng = np.random.default_rng(0)
        for case, k in zip(cases, manifest["variants"]["check"]["kernels"]):
            ok = check(device, Path(tmp), k, rng)
            sizes = workgroup_sizes(case.build()[0], kind.target, flags)  # cached by build
            rows.append({"kernel": k["name"], "correct": ok, "workgroup_sizes": sizes})
            print(f"{k['name']:28s} {'OK' if ok else 'WRONG':5s}  invocations per workgroup {sizes}")
        device.close()
    wrong = [r["kernel"] for r in rows if not r["correct"]]
    print(f"wrong: {len(wrong)} of {len(rows)}" + (f" ({', '.join(wrong)})" if wrong else ""))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"device": name, "flags": args.flags, "kernels": rows},
                                         indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
