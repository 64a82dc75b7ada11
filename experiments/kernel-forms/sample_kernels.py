"""Greedy sampling on a device: which formulation IREE compiles correctly and fast.

Sampling picks the index of the first maximum of (1, V) logits, once per generated token.
Formulations, each exported with torch-mlir and compiled with IREE:
  argmax      torch.argmax (one reduction with two results: value and index)
  max_min_i32 amax, then the lowest int32 index holding it (two one-result reductions)
  max_min_f32 the same with the index reduction in float32: agentc.models.sampling.greedy
  two_stage   argmax within 48 rows of 1024, then across the rows

Here:   python experiments/kernel-forms/sample_kernels.py compile --target cuda --out .device/sample-kernels
There:  python experiments/kernel-forms/sample_kernels.py run .device/sample-kernels --driver cuda
`run` checks each module against np.argmax on random and tied logits and times a call
(dispatch, wait and readback of the token), all measured side by side in one process.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from formulations import compile_each, time_side_by_side
from formulations import main as cli

V = 49152  # SmolLM2's vocabulary


def formulations():
    import torch

    def argmax(x):
        return torch.argmax(x, dim=-1).to(torch.int32)

    def max_min_i32(x):
        top = x.amax(dim=-1, keepdim=True)
        i = torch.arange(V, dtype=torch.int32)
        return torch.where(x == top, i, torch.full_like(i, V - 1)).amin(dim=-1).to(torch.int32)

    from agentc.models.sampling import greedy as max_min_f32  # the operator agentc ships

    def two_stage(x):
        rows = x.reshape(1, 48, V // 48)
        best = rows.amax(dim=-1)  # (1, 48)
        within = torch.argmax(rows, dim=-1)  # (1, 48)
        row = torch.argmax(best, dim=-1)  # (1,)
        return (row * (V // 48) + within.gather(1, row[:, None])[:, 0]).to(torch.int32)

    return {"argmax": argmax, "max_min_i32": max_min_i32, "max_min_f32": max_min_f32, "two_stage": two_stage}


def compile_all(target: str, out: Path) -> None:
    example = np.zeros((1, V), np.float32)
    compile_each(target, out, [(name, name, fn, [example]) for name, fn in formulations().items()])


def run_all(build: Path, driver: str, staged: bool, out_json: str | None) -> None:
    from agentc.bench.timing import Device

    rng = np.random.default_rng(0)
    cases = [rng.standard_normal((1, V)).astype(np.float32) * 3 for _ in range(8)]
    tied = np.zeros((1, V), np.float32)
    tied[0, [777, 40000]] = 1.0
    cases.append(tied)
    dev = Device(driver, staged)
    fns, rows = {}, {}
    for path in sorted(build.glob("*.vmfb")):
        f = dev.load(path.read_bytes(), path.stem)
        got = [int(dev.readback(f(dev.upload(c))).ravel()[0]) for c in cases]
        want = [int(np.argmax(c)) for c in cases]
        rows[path.stem] = {"correct": sum(g == w for g, w in zip(got, want)), "cases": len(cases), "first_got": got[:3]}
        arg = dev.upload(cases[0])
        fns[path.stem] = (lambda f=f, a=arg: dev.readback(f(a)))
    time_side_by_side(fns, rows, lambda key, row: f"{key:12s} correct {row['correct']}/{row['cases']}"
                      f"  (first results {row['first_got']})", out_json, budget_s=2.0)


def main(argv=None):
    cli(__doc__.splitlines()[0], compile_all, run_all, argv)


if __name__ == "__main__":
    main()
