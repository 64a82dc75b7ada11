"""Greedy sampling on a device: which formulation IREE compiles correctly and fast.

Sampling picks the index of the first maximum of (1, V) logits, once per generated token.
Formulations, each exported with torch-mlir and compiled with IREE:
  argmax      torch.argmax (one reduction with two results: value and index)
  max_min_i32 amax, then the lowest int32 index holding it (two one-result reductions)
  max_min_f32 the same with the index reduction in float32
  two_stage   argmax within 48 rows of 1024, then across the rows

Here:   python bench/sample_kernels.py compile --target cuda --out .device/sample-kernels
There:  python bench/sample_kernels.py run .device/sample-kernels --driver cuda
`run` checks each module against np.argmax on random and tied logits and times a call
(dispatch, wait and readback of the token), all measured side by side in one process.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

V = 49152  # SmolLM2's vocabulary


def formulations():
    import torch

    def argmax(x):
        return torch.argmax(x, dim=-1).to(torch.int32)

    def max_min_i32(x):
        top = x.amax(dim=-1, keepdim=True)
        i = torch.arange(V, dtype=torch.int32)
        return torch.where(x == top, i, torch.full_like(i, V - 1)).amin(dim=-1).to(torch.int32)

    def max_min_f32(x):
        top = x.amax(dim=-1, keepdim=True)
        i = torch.arange(V, dtype=torch.float32)
        return torch.where(x == top, i, float(V - 1)).amin(dim=-1).to(torch.int32)

    def two_stage(x):
        rows = x.reshape(1, 48, V // 48)
        best = rows.amax(dim=-1)  # (1, 48)
        within = torch.argmax(rows, dim=-1)  # (1, 48)
        row = torch.argmax(best, dim=-1)  # (1,)
        return (row * (V // 48) + within.gather(1, row[:, None])[:, 0]).to(torch.int32)

    return {"argmax": argmax, "max_min_i32": max_min_i32, "max_min_f32": max_min_f32, "two_stage": two_stage}


def compile_all(target: str, out: Path) -> None:
    from agentc.runtime.devices import KINDS

    from agentc.iree_compile import compile_module
    from agentc.models.export import export_function

    kind = next(k for k in KINDS.values() if k.target == target or k.name == target)
    out.mkdir(parents=True, exist_ok=True)
    example = np.zeros((1, V), np.float32)
    for name, fn in formulations().items():
        text = export_function(fn, [example], name, [], {"bench": "sample_kernels"})
        vmfb, _ = compile_module(text, kind.target, kind.compile_flags, kind.name)
        (out / f"{name}.vmfb").write_bytes(vmfb)
        print(f"{name}: {len(vmfb)} bytes", file=sys.stderr)


def run_all(build: Path, driver: str, staged: bool, out_json: str | None) -> None:
    from agentc.bench.timing import Device, interleaved

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
    stats = interleaved(list(fns.values()), budget_s=2.0)
    for (name, _), s in zip(fns.items(), stats):
        rows[name]["median_us"] = s.median_s * 1e6
        print(f"{name:12s} correct {rows[name]['correct']}/{rows[name]['cases']}  median {s.median_s * 1e6:8.1f} us"
              f"  (first results {rows[name]['first_got']})")
    if out_json:
        Path(out_json).write_text(json.dumps(rows, indent=1))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("compile")
    c.add_argument("--target", default="cuda")
    c.add_argument("--out", required=True)
    r = sub.add_parser("run")
    r.add_argument("build")
    r.add_argument("--driver", default="cuda")
    r.add_argument("--json")
    args = p.parse_args(argv)
    if args.cmd == "compile":
        compile_all(args.target, Path(args.out))
    else:
        run_all(Path(args.build), args.driver, args.driver in ("cuda", "vulkan"), args.json)


if __name__ == "__main__":
    main()
