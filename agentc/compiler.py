"""The compile pipeline: graph.py -> agent IR -> operators -> placement -> per-device IREE
modules -> build directory. Each stage has one input and one output; `emit` stops after a
stage and returns its text.

A build directory holds agent.mlir, operators.mlir, plan.json, one .vmfb per device,
weights.npz and manifest.json (content hashes), plus a copy of graph.py for its tools.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from agentc.cost_models.catalog import load_catalog
from agentc.cost_models.roofline import kernel_time, kernel_work
from agentc.dialects import context
from agentc.emit import emit_agent_ir
from agentc.frontend.graph import AgentError
from agentc.frontend.trace import trace_file
from agentc.iree_compile import compile_module
from agentc.passes import run_pass
from agentc.passes.decompose_agent_ops import DecomposeAgentOps
from agentc.passes.outline_device_modules import OutlineDeviceModules
from agentc.placement import place
from agentc.plan import build_plan
from agentc.runtime.devices import KINDS, usable

STAGES = ("agent", "operators", "plan")


@dataclass
class CompileOptions:
    devices: list[str] | None = None  # None: every usable device of this machine
    sla_ms: float | None = None
    strict_sla: bool = False
    emit: str | None = None
    time_limit_s: float = 5.0
    slowdown: dict[str, float] | None = None  # device -> factor, for what-if placement
    catalog: str | None = None
    agent: str | None = None
    quiet: bool = False


def resolve_devices(devices: list[str] | None, catalog) -> list[str]:
    if not devices:
        found = [d for d in usable() if d in catalog.devices]
        return found or ["cpu"]
    for d in devices:
        if d not in KINDS or d not in catalog.devices:
            raise AgentError(f"--devices: unknown device '{d}' (known: {', '.join(KINDS)})")
    return list(dict.fromkeys(devices))


def _log(opts: CompileOptions, msg: str) -> None:
    if not opts.quiet:
        print(f"[agentc] {msg}", file=sys.stderr, flush=True)


def compile_file(graph_path, out_dir, opts: CompileOptions | None = None):
    """Compile; returns the build directory (or, with `emit`, the text of that stage)."""
    opts = opts or CompileOptions()
    t0 = time.perf_counter()
    catalog = load_catalog(opts.catalog) if opts.catalog else load_catalog()
    devices = resolve_devices(opts.devices, catalog)
    if opts.emit is not None and opts.emit not in STAGES:
        raise AgentError(f"--emit: unknown stage '{opts.emit}' (known: {', '.join(STAGES)})")

    graph = trace_file(graph_path, opts.agent)
    ctx = context()
    module = emit_agent_ir(graph, ctx)
    if opts.emit == "agent":
        return module.operation.get_asm(enable_debug_info=True)
    agent_text = module.operation.get_asm(enable_debug_info=True)

    with ctx:
        decompose = DecomposeAgentOps(indexes=graph.indexes)
        run_pass(module, decompose)
    _log(opts, f"decomposed into operators ({time.perf_counter() - t0:.1f}s)")
    if opts.emit == "operators":
        return module.operation.get_asm(enable_debug_info=True)

    with ctx:
        ops, inputs, outputs = build_plan(module, graph.name)
        funcs = {str(o.attributes["sym_name"]).strip('"'): o for o in module.body.operations
                 if o.operation.name == "func.func"}
    call_times, weights = {}, {}
    for callee in {op.callee for op in ops if op.kind == "call"}:
        work = kernel_work(funcs[callee + "_impl"], funcs[callee])
        slow = dict(opts.slowdown or {})
        call_times[callee] = {d: kernel_time(work, catalog.devices[d]) * slow.get(d, 1.0) for d in devices}
        group = str(funcs[callee].attributes["agent.weights"]).strip('"')
        nbytes = sum(a.nbytes for a in decompose.weights.get(group, {}).values())
        weights[callee] = {group: nbytes} if nbytes else {}
    pinned = _memory_check(ops, devices, catalog, weights)
    sla = opts.sla_ms if opts.sla_ms is not None else graph.sla_ms
    placement = place(ops, devices, catalog, call_times, weights, sla, opts.time_limit_s, pinned)
    _log(opts, f"placed {len(ops)} operators on {', '.join(devices)} + host "
               f"({placement.status}, {placement.solve_time_s:.2f}s)")
    if sla is not None and placement.makespan_s * 1e3 > sla:
        msg = (f"SLA {sla:g} ms is unreachable on {', '.join(devices)}: predicted latency "
               f"{placement.makespan_s * 1e3:.1f} ms")
        if opts.strict_sla:
            raise AgentError(f"{graph.loc}: agent '{graph.name}': {msg}")
        print(f"agentc: warning: {msg}", file=sys.stderr)
    plan = {
        "agent": graph.name, "inputs": [v.name for v in graph.inputs], "input_ids": inputs,
        "outputs": outputs, "devices": devices, "sla_ms": sla,
        "predicted_ms": placement.makespan_s * 1e3, "status": placement.status,
        "lower_bound_ms": placement.lower_bound_s * 1e3, "ops": [op.to_json() for op in ops],
        "indexes": {n: idx.passages for n, idx in graph.indexes.items()},
    }
    if opts.emit == "plan":
        return placement.table()

    with ctx:
        outline = OutlineDeviceModules({op.name: op.device for op in ops if op.kind == "call"},
                                       decompose.weights)
        run_pass(module, outline)
        operators_text = module.operation.get_asm(enable_debug_info=True)

    out = Path(out_dir or Path("build") / Path(graph_path).stem)
    out.mkdir(parents=True, exist_ok=True)
    files = {"agent.mlir": agent_text.encode(), "operators.mlir": operators_text.encode(),
             "plan.json": json.dumps(plan, indent=1).encode()}
    modules = {}
    for device, text in outline.device_modules.items():
        kind = KINDS[device]
        t1 = time.perf_counter()
        vmfb, hit = compile_module(text, kind.target, kind.compile_flags, device)
        _log(opts, f"{device}: {'cached' if hit else 'compiled'} module ({time.perf_counter() - t1:.1f}s)")
        files[f"{device}.vmfb"] = vmfb
        files[f"{device}.mlir"] = text.encode()
        modules[device] = {"target": kind.target, "flags": list(kind.compile_flags), "cached": hit}
    for stale in KINDS.keys() - modules.keys():  # modules of an earlier build of this directory
        for suffix in (".vmfb", ".mlir"):
            (out / f"{stale}{suffix}").unlink(missing_ok=True)
    arrays = {f"{g}::{p}": a for g, ps in decompose.weights.items() for p, a in ps.items()}
    weights_path = out / "weights.npz"
    np.savez(weights_path, **arrays)
    for name, data in files.items():
        (out / name).write_bytes(data)
    shutil.copyfile(graph_path, out / "graph.py")
    corpus_dir = Path(graph_path).resolve().parent
    manifest = {"graph": str(Path(graph_path).resolve()), "source_dir": str(corpus_dir), "modules": modules,
                "files": {n: hashlib.sha256((out / n).read_bytes()).hexdigest()
                          for n in sorted(files) + ["weights.npz", "graph.py"]}}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    _log(opts, f"build written to {out} ({time.perf_counter() - t0:.1f}s)")
    placement.build_dir = out
    return placement


def _memory_check(ops, devices, catalog, weights) -> dict[str, list[str]]:
    """An operator whose weights fit no listed device is an error naming it."""
    pinned = {}
    for op in ops:
        if op.kind != "call":
            continue
        need = sum(weights.get(op.callee, {}).values())
        fits = [d for d in devices if catalog.devices[d].memory_bytes >= need]
        if not fits:
            raise AgentError(f"{op.loc}: node '{op.name}': no listed device can run it "
                             f"(needs {need / 1e6:.1f} MB of weights; devices: {', '.join(devices)})")
        pinned[op.name] = fits
    return pinned
