"""Compile a bench sweep into an artifacts directory: one .vmfb per kernel and variant, and
a manifest.json that lists each kernel's function, inputs, op class, FLOPs and bytes.

The directory is everything the runner (run_artifacts.py) needs, so a sweep compiled here
can be measured on a machine with only numpy and iree.runtime. Each set of extra IREE
flags is a named variant in the same directory, so flag experiments travel together.
Compiles go through agentc's content-hash cache.
"""

from __future__ import annotations

import datetime
import json
import re
from concurrent.futures import ThreadPoolExecutor
from importlib.metadata import version
from pathlib import Path

from agentc.bench.dispatch_grid import dispatch_grid
from agentc.bench.progress import Progress
from agentc.bench.sweep import BUILDERS, Case

SCHEMA = "agentc-bench-artifacts/1"
MANIFEST = "manifest.json"


class ArtifactsError(ValueError):
    pass


def variant_name(extra_flags: list[str]) -> str:
    """`base` without extra flags, else a readable slug of them."""
    if not extra_flags:
        return "base"
    slugs = [re.sub(r"[^A-Za-z0-9]+", "-", f.removeprefix("--iree-")).strip("-") for f in extra_flags]
    return "+".join(slugs)[:80]


def _analyse(text: str, function: str) -> dict:
    """Op class, FLOPs, bytes and input types of `function`, from its IR."""
    from torch_mlir import ir

    from agentc.cost.roofline import func_work

    with ir.Context():
        module = ir.Module.parse(text)
        func = next((op for op in module.body.operations if op.operation.name == "func.func"
                     and str(op.attributes["sym_name"]).strip('"') == function), None)
        if func is None:
            raise ArtifactsError(f"bench kernel text has no func.func @{function}")
        work = func_work(func)
        ftype = ir.FunctionType(ir.TypeAttr(func.attributes["function_type"]).value)
        inputs = [[list(ir.RankedTensorType(t).shape), str(ir.RankedTensorType(t).element_type)]
                  for t in ftype.inputs]
    return {"op_class": work.op_class, "dtype": work.dtype, "flops": work.flops,
            "bytes": work.bytes, "dispatches": work.dispatches, "parallel": work.parallel,
            "columns": work.columns, "inputs": inputs}


ANALYSED = ("op_class", "dtype", "flops", "bytes", "dispatches", "parallel", "columns")


def refresh(measured: dict, progress: bool = False) -> int:
    """Brings stored measurements up to the current cost model before a refit: each kernel
    re-analysed (`reanalyse`) and the per-call overheads recomputed from the stored probes
    (`run_artifacts.overheads`). Returns how many kernels changed."""
    from agentc.bench.run_artifacts import overheads

    changed = reanalyse(measured["kernels"], measured["target"], measured.get("flags"),
                        progress=progress)
    probes = (measured.get("overheads") or {}).get("probes")
    if probes:
        measured["overheads"] = overheads(probes)
    return changed


def reanalyse(kernels: list[dict], target: str | None = None, flags: list[str] | None = None,
              progress: bool = False) -> int:
    """Recompute each measured kernel's analysis (class, FLOPs, bytes, dispatches) from its
    case's IR, in place, so measurements taken under an older cost model are priced by the
    current one; with `target` (a KINDS name) and the profile's IREE `flags`, also the
    dispatch grid of kernels measured without one (a build records the grid of the module
    it measures). Kernels that name no sweep case keep theirs. Returns how many changed."""
    cases = []
    for k in kernels:
        if k.get("op") not in BUILDERS or not isinstance(k.get("params"), dict):
            continue
        case = Case(k["op"], k["dtype"], tuple(k["params"].items()))
        if case.name == k["name"]:
            cases.append((k, *case.build()))
    grids: list = [None] * len(cases)
    if target is not None:
        from agentc.devices import KINDS

        kind = KINDS[target]
        # Only the grids computed here show progress: a recorded one costs nothing.
        bar = Progress(sum(not k.get("grid") for k, *_ in cases), f"dispatch grids {target}", progress)

        def grid_of(item):
            k, text, _ = item
            if k.get("grid"):
                return k["grid"]
            grid = dispatch_grid(text, kind.target, tuple(flags or kind.compile_flags))
            bar.step(k["name"])
            return grid

        with ThreadPoolExecutor(max_workers=2) as pool:
            grids = list(pool.map(grid_of, cases))
    changed = 0
    for (k, text, function), grid in zip(cases, grids):
        fresh = {f: v for f, v in _analyse(text, function).items() if f in ANALYSED}
        if grid is not None:
            fresh["grid"] = grid
        if any(v != k.get(f) for f, v in fresh.items()):
            changed += 1
            k.update(fresh)
            if "measured_s" in k:
                k.update(achieved_flops=k["flops"] / k["measured_s"],
                         achieved_bytes_per_s=k["bytes"] / k["measured_s"])
    return changed


def build(cases: list[Case], target: str, out_dir, extra_flags: list[str] | None = None,
          variant: str | None = None, progress: bool = True, jobs: int = 2) -> dict:
    """Compile `cases` for `target` (cpu, vulkan, cuda) into `out_dir`; returns the manifest.
    An existing manifest for the same target keeps its other variants."""
    from agentc.build.iree_compile import compile_module
    from agentc.cost.catalog import load_catalog
    from agentc.devices import KINDS

    if target not in KINDS:
        raise ArtifactsError(f"--target: unknown target '{target}' (known: {', '.join(KINDS)})")
    kind = KINDS[target]
    extra = list(extra_flags or [])
    flags = [*kind.compile_flags, *extra]
    variant = variant or variant_name(extra)
    out = Path(out_dir)
    manifest = _existing(out, target) or _new_manifest(target, kind, load_catalog())
    bar = Progress(len(cases), f"compile {target}:{variant}", progress)

    # Exporting (torch) and IR analysis stay on this thread; compiles run in parallel.
    entries = []
    for case in cases:
        text, function = case.build()
        entries.append((text, {"name": case.name, "op": case.op, "params": case.p,
                               "role": case.role, "function": function,
                               **_analyse(text, function)}))

    def compile_entry(item: tuple[str, dict]) -> dict:
        text, entry = item
        vmfb, cached = compile_module(text, kind.target, tuple(flags), f"bench-{target}")
        entry = dict(entry, grid=dispatch_grid(text, kind.target, tuple(flags)))
        path = Path(variant) / f"{entry['name']}.vmfb"
        (out / path).parent.mkdir(parents=True, exist_ok=True)
        (out / path).write_bytes(vmfb)
        bar.step(entry["name"])
        return dict(entry, vmfb=str(path), vmfb_bytes=len(vmfb), cached=cached)

    with ThreadPoolExecutor(max_workers=max(jobs, 1)) as pool:
        kernels = list(pool.map(compile_entry, entries))
    manifest["variants"][variant] = {"flags": flags, "extra_flags": extra, "kernels": kernels}
    out.mkdir(parents=True, exist_ok=True)
    (out / MANIFEST).write_text(json.dumps(manifest, indent=1))
    return manifest


def _new_manifest(target: str, kind, catalog) -> dict:
    spec = catalog.devices[target]
    return {
        "schema": SCHEMA, "target": target, "driver": kind.driver, "iree_target": kind.target,
        "staged_readback": kind.staged_readback,
        "spec": {"name": spec.name, "description": spec.description,
                 "peak_flops": spec.peak_flops, "memory_bandwidth": spec.memory_bandwidth},
        "iree_compiler_version": version("iree-base-compiler"),
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "variants": {},
    }


def _existing(out: Path, target: str) -> dict | None:
    path = out / MANIFEST
    if not path.exists():
        return None
    manifest = json.loads(path.read_text())
    if manifest.get("target") != target:
        raise ArtifactsError(f"{path}: holds target '{manifest.get('target')}', not '{target}'; "
                             "use another --artifacts directory")
    return manifest


def measure_cases(cases: list[Case], target: str, budget_s: float, rounds: int = 5,
                  label: str = "probe") -> tuple[list[dict], str]:
    """Compile `cases` for `target` into a scratch directory and time them round-robin on
    this machine's device in one process: the kernel entries, and the device's name. For
    the bench scripts that compare shapes side by side (experiments/cost-model/ragged_columns.py, ...)."""
    import tempfile

    from agentc.bench.run_artifacts import measure_variant
    from agentc.bench.timing import Device
    from agentc.devices import KINDS

    kind = KINDS[target]
    with tempfile.TemporaryDirectory(prefix=f"{label}-") as tmp:
        manifest = build(cases, target, tmp, variant=label)
        device = Device(kind.driver, staged_readback=kind.staged_readback)
        try:
            kernels, _ = measure_variant(Path(tmp), manifest, label, device, budget_s,
                                         rounds=rounds, progress=True)
            return kernels, device.info.get("name", target)
        finally:
            device.close()
