"""What the formulation benchmarks share (sample_kernels.py, decode_attention.py): each
writes one computation several ways, exports every way through torch-mlir, compiles it
here and times it on a device machine that has no compiler:

    python bench/<script>.py compile --target cuda --out DIR
    python bench/<script>.py run DIR --driver cuda [--json F]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def compile_each(target: str, out: Path, items: list[tuple[str, str, object, list]]) -> None:
    """Export and compile each (file stem, function name, python function, example args)
    into DIR/<stem>.vmfb for `target` (a device kind or IREE target name)."""
    from agentc.build.iree_compile import compile_module
    from agentc.devices import KINDS
    from agentc.models.export import export_function

    kind = next(k for k in KINDS.values() if k.target == target or k.name == target)
    out.mkdir(parents=True, exist_ok=True)
    for stem, name, fn, args in items:
        text = export_function(fn, args, name, [], {"bench": "formulations", "stem": stem})
        vmfb, _ = compile_module(text, kind.target, kind.compile_flags, kind.name)
        (out / f"{stem}.vmfb").write_bytes(vmfb)
        print(f"{stem}: {len(vmfb)} bytes", file=sys.stderr)


def main(description: str, compile_all, run_all, argv=None) -> None:
    """`compile_all(target, out_dir)`; `run_all(build_dir, driver, staged_readback, json)`."""
    p = argparse.ArgumentParser(description=description)
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


def time_side_by_side(fns: dict, rows: dict, label, out_json: str | None,
                      budget_s: float = 1.0) -> None:
    """Time every callable round-robin in one process, add `median_us` and `p10_us` to its
    row, print a line per formulation (`label(key, row)`, then the times) and write the
    rows to `out_json` when given."""
    import json

    from agentc.bench.timing import interleaved

    stats = interleaved(list(fns.values()), budget_s=budget_s, rounds=5)
    for key, s in zip(fns, stats):
        rows[key].update(median_us=s.median_s * 1e6, p10_us=s.p10_s * 1e6)
        print(f"{label(key, rows[key])}  median {s.median_s * 1e6:8.1f} us  p10 {s.p10_s * 1e6:8.1f} us")
    if out_json:
        Path(out_json).write_text(json.dumps(rows, indent=1))


def check_and_time(build: Path, driver: str, staged: bool, out_json: str | None, case,
                   width: int = 24) -> None:
    """For numeric formulations saved as DIR/<name>.<shape>.vmfb: `case(name, shape)` gives
    (example arrays, reference result); each module's result is checked against it (max
    absolute error) and all are then timed side by side with their inputs resident."""
    import numpy as np

    from agentc.bench.timing import Device

    dev = Device(driver, staged)
    fns, rows = {}, {}
    for path in sorted(build.glob("*.vmfb")):
        name, shape = path.stem.split(".", 1)
        args, want = case(name, shape)
        f = dev.load(path.read_bytes(), name)
        resident = [dev.upload(a) for a in args]
        err = float(np.abs(dev.readback(f(*resident)) - want).max())
        rows[path.stem] = {"formulation": name, "shape": shape, "max_abs_error": err}
        fns[path.stem] = (lambda f=f, a=resident: f(*a))
    time_side_by_side(fns, rows, lambda key, row: f"{key:{width}s} max |error| {row['max_abs_error']:.1e}",
                      out_json)
