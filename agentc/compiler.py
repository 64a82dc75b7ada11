"""The compile pipeline: graph.py -> agent IR -> operators -> placement -> per-device IREE
modules -> build directory. Each stage has one input and one output; `emit` stops after a
stage and returns its text.

A build directory holds agent.mlir, operators.mlir, plan.json, one .vmfb per device,
weights/<owner>.irpa (IREE parameter archives, see agentc.build_weights), the tokenizers its
host operators use, tools.pkl (the graph's tools, recorded: agentc/tool_record.py), a copy of
graph.py for reference, and manifest.json (the sha256 of every file).
"""

from __future__ import annotations

import json
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from agentc import store
from agentc.build_weights import write_build_weights
from agentc.cluster import Cluster, load_cluster, local_cluster
from agentc.cost_models.catalog import device_profile, load_catalog
from agentc.cost_models.roofline import func_work, kernel_time, runs_on
from agentc.dialects import context
from agentc.emit import emit_agent_ir
from agentc.frontend.graph import AgentError
from agentc.frontend.trace import trace_file
from agentc.iree_compile import compile_module
from agentc.kernels import impl_for
from agentc.models import registry
from agentc.passes import run_pass
from agentc.passes.assign_devices import AssignDevices
from agentc.passes.decompose_agent_ops import DecomposeAgentOps
from agentc.passes.outline_device_modules import OutlineDeviceModules
from agentc.placement import Placement, explain, place
from agentc.plan import build_plan
from agentc.runtime.devices import KINDS, usable
from agentc.scheduler.explain import SlaError, explain_sla
from agentc.scheduler.taskgraph import ScheduleError
from agentc.tool_record import TOOLS_FILE, record_tools
from agentc.useful_devices import useful_counts

STAGES = ("agent", "operators", "plan")


@dataclass
class CompileOptions:
    devices: list[str] | None = None  # local device kinds; None: every usable device here
    cluster: str | None = None  # cluster.yaml (instead of `devices`)
    sla_ms: float | None = None
    strict_sla: bool = False
    objective: str = "latency"  # or "tco": cheapest placement that meets the SLA
    arrival_rate: float | None = None  # requests/s, for throughput-mode TCO
    emit: str | None = None
    time_limit_s: float = 5.0
    slowdown: dict[str, float] | None = None  # device -> factor, for what-if placement
    catalog: str | None = None
    agent: str | None = None
    quiet: bool = False
    max_nodes: int | None = None  # stop tracing past this many nodes (default: Graph.max_nodes)


@dataclass
class Lowered:
    """An agent after tracing, decomposition and planning: what placement reads."""

    graph: object
    ctx: object
    module: object
    agent_text: str
    weights: dict  # weight group -> {param: array}, what the kernels read (decompose-agent-ops)
    ops: list
    inputs: list[str]
    outputs: list[str]
    funcs: dict


def resolve_devices(devices, catalog) -> list[str]:
    """Local device kinds: a list, or a comma-separated string; None: every usable one."""
    if devices is None:
        found = [d for d in usable() if d in catalog.devices]
        return found or ["cpu"]
    if isinstance(devices, str):
        devices = [d.strip() for d in devices.split(",")]
    if not isinstance(devices, (list, tuple)) or not all(isinstance(d, str) and d for d in devices) \
            or not devices:
        raise AgentError(f"--devices: expected device names (cpu, vulkan, cuda), got {devices!r}")
    for d in devices:
        if d not in KINDS or d not in catalog.devices:
            raise AgentError(f"--devices: unknown device '{d}' (known: {', '.join(KINDS)})")
    return list(dict.fromkeys(devices))


def resolve_cluster(opts: CompileOptions, catalog) -> Cluster:
    if opts.cluster:
        if opts.devices:
            raise AgentError("--devices and --cluster: give one of them, not both")
        return load_cluster(opts.cluster, catalog)
    return local_cluster(resolve_devices(opts.devices, catalog), catalog)


def _log(opts: CompileOptions, msg: str) -> None:
    if not opts.quiet:
        print(f"[agentc] {msg}", file=sys.stderr, flush=True)


def lower(graph_path, agent: str | None = None, emit: str | None = None,
          cluster: Cluster | None = None, max_nodes: int | None = None):
    """graph.py -> agent IR -> operators -> plan. With `emit` "agent" or "operators",
    returns that stage's text instead. With `cluster`, LLMs that do not choose a granularity
    get the cluster's (`llm_granularity`) and kernels carry only its runtimes' variants;
    without, per-layer operators and every variant."""
    granularity = llm_granularity(cluster) if cluster is not None else "layer"
    runtimes = cluster_runtimes(cluster) if cluster is not None else None
    graph = trace_file(graph_path, agent, max_nodes)
    ctx = context()
    module = emit_agent_ir(graph, ctx)
    agent_text = module.operation.get_asm(enable_debug_info=True)
    if emit == "agent":
        return agent_text
    with ctx:
        decompose = DecomposeAgentOps(indexes=graph.indexes, granularity=granularity, runtimes=runtimes)
        run_pass(module, decompose)
    if emit == "operators":
        return module.operation.get_asm(enable_debug_info=True)
    with ctx:
        ops, inputs, outputs = build_plan(module, graph.name)
        funcs = {str(o.attributes["sym_name"]).strip('"'): o for o in module.body.operations
                 if o.operation.name == "func.func"}
    return Lowered(graph, ctx, module, agent_text, decompose.weights, ops, inputs, outputs, funcs)


def estimate(low: Lowered, cluster: Cluster, slowdown: dict[str, float] | None = None):
    """Run time of every kernel on every cluster device that computes it right (none where
    a loop over one row passes the device's `max_loop_iterations`), and the weights it keeps
    resident."""
    call_times, weights, row_loops = {}, {}, {}
    slow = dict(slowdown or {})
    for callee in {op.callee for op in low.ops if op.kind == "call"}:
        # The implementation's signature is the interface: the wrapper only loads weights.
        # A device runs its runtime's variant of the kernel where there is one.
        works, times = {}, {}
        call_times[callee] = times
        for d in cluster.devices.values():
            impl = impl_for(low.funcs, callee, d.runtime)
            if id(impl) not in works:
                works[id(impl)] = func_work(impl)
            work = works[id(impl)]
            if runs_on(work, d.spec):
                times[d.name] = kernel_time(work, d.spec, device_profile(d.spec)) * slow.get(d.name, 1.0)
        row_loops[callee] = max(w.row_loop for w in works.values())
        group = str(low.funcs[callee].attributes["agent.weights"]).strip('"')
        nbytes = sum(a.nbytes for a in low.weights.get(group, {}).values())
        weights[callee] = {group: nbytes} if nbytes else {}
    _admission_check(low.ops, cluster, weights, call_times, row_loops)
    return call_times, weights


def listed_cluster(low: Lowered, cluster: Cluster, opts: CompileOptions) -> Cluster:
    """The cluster as placement sees it: of each class of interchangeable devices, as many
    as a request can use (agentc/useful_devices.py)."""
    reps = cluster.trimmed(lambda groups: 1)
    call_times, weights = estimate(low, reps, opts.slowdown)
    return cluster.trimmed(useful_counts(low.ops, reps, call_times, weights, opts.arrival_rate))


def place_lowered(low: Lowered, cluster: Cluster, opts: CompileOptions) -> Placement:
    """Place with the requested objective. An unreachable SLA is explained; it is an
    error with `strict_sla`, otherwise a warning and the fastest placement. The placement's
    `cluster` is what was listed to the solver (`listed_cluster`)."""
    cluster = listed_cluster(low, cluster, opts)
    call_times, weights = estimate(low, cluster, opts.slowdown)
    sla = opts.sla_ms if opts.sla_ms is not None else low.graph.sla_ms
    where = f"{low.graph.loc}: agent '{low.graph.name}'"
    try:
        placement = place(low.ops, cluster, call_times, weights, sla, opts.objective,
                          opts.time_limit_s, opts.arrival_rate)
    except SlaError as e:  # tco: no placement meets the SLA; fall back to the fastest
        if opts.strict_sla:
            raise AgentError(f"{where}: {explain(e.report)}") from None
        print(f"agentc: warning: {where}: {explain(e.report)}", file=sys.stderr)
        placement = place(low.ops, cluster, call_times, weights, sla, "latency", opts.time_limit_s)
    except ScheduleError as e:
        raise AgentError(f"{where}: cannot place on {cluster.describe()}: {e}") from None
    sources = ", ".join(f"{g.name}: {Path(g.spec.profile).name if g.spec.profile else 'catalog defaults'}"
                        for g in cluster.groups.values() if cluster.listed(g))
    _log(opts, f"cost model: {sources}")
    _log(opts, f"placed {len(low.ops)} operators on {cluster.describe()} + host "
               f"({placement.status}, {placement.solve_time_s:.2f}s)")
    if not placement.meets_sla and opts.objective != "tco":
        report = explain_sla(placement.taskgraph, sla / 1e3, schedule=placement.schedule)
        if opts.strict_sla:
            raise AgentError(f"{where}: {explain(report)}")
        print(f"agentc: warning: {where}: {explain(report)}", file=sys.stderr)
    placement.cluster = cluster
    return placement


def place_file(graph_path, cluster=None, sla_ms: float | None = None, objective: str = "tco",
               time_limit_s: float = 5.0, arrival_rate: float | None = None,
               agent: str | None = None, strict_sla: bool = False, quiet: bool = True,
               max_nodes: int | None = None) -> Placement:
    """Placement only (no IREE): `cluster` is a cluster.yaml path, a Cluster, a list of
    local device kinds, or None for this machine's usable devices."""
    opts = CompileOptions(sla_ms=sla_ms, objective=objective, time_limit_s=time_limit_s,
                          arrival_rate=arrival_rate, agent=agent, strict_sla=strict_sla, quiet=quiet,
                          max_nodes=max_nodes)
    check_options(opts)
    catalog = load_catalog()
    if isinstance(cluster, Cluster):
        resolved = cluster
    elif isinstance(cluster, (list, tuple, str)) and not str(cluster).endswith((".yaml", ".yml")):
        resolved = local_cluster(resolve_devices(cluster, catalog), catalog)
    else:
        opts.cluster = str(cluster) if cluster is not None else None
        resolved = resolve_cluster(opts, catalog)
    low = lower(graph_path, agent, cluster=resolved, max_nodes=max_nodes)
    return place_lowered(low, resolved, opts)


def check_options(opts: CompileOptions) -> None:
    """The options the CLI's flags check, checked again for Python callers (agentc.compile,
    agentc.place): each error names the flag."""
    def number(flag: str, v, whole: bool = False) -> None:
        if v is None:
            return
        ok = isinstance(v, int) if whole else isinstance(v, (int, float))
        if isinstance(v, bool) or not ok or not 0 < v < float("inf"):
            raise AgentError(f"--{flag}: must be a {'whole ' if whole else ''}number > 0, got {v!r}")

    number("time-limit", opts.time_limit_s)
    number("sla-ms", opts.sla_ms)
    number("arrival-rate", opts.arrival_rate)
    number("max-nodes", opts.max_nodes, whole=True)
    if opts.objective not in ("latency", "tco"):
        raise AgentError(f"--objective: unknown objective {opts.objective!r} (known: latency, tco)")
    if opts.agent is not None and not isinstance(opts.agent, str):
        raise AgentError(f"--agent: expected an agent name, got {opts.agent!r}")


def cluster_runtimes(cluster: Cluster) -> frozenset[str]:
    """The runtimes a build for `cluster` has devices of: kernels carry variants for these."""
    return frozenset(g.runtime for g in cluster.groups.values() if g.runtime)


def llm_granularity(cluster: Cluster) -> str:
    """Per-layer LLM operators exist so that layers and steps can go to different devices;
    with one device there is nothing to split, and per-step operators make ~14x fewer device calls
    (measured side by side: `bench/rag_e2e.py --granularity`, docs/gpu-h200.md)."""
    return "step" if cluster.size == 1 else "layer"


def compile_file(graph_path, out_dir, opts: CompileOptions | None = None):
    """Compile; returns the Placement, with `build_dir` set (or, with `emit`, that
    stage's text)."""
    opts = opts or CompileOptions()
    check_options(opts)
    t0 = time.perf_counter()
    catalog = load_catalog(opts.catalog) if opts.catalog else load_catalog()
    cluster = resolve_cluster(opts, catalog)
    if opts.emit is not None and opts.emit not in STAGES:
        raise AgentError(f"--emit: unknown stage '{opts.emit}' (known: {', '.join(STAGES)})")
    low = lower(graph_path, opts.agent, opts.emit, cluster, opts.max_nodes)
    if isinstance(low, str):
        return low
    _log(opts, f"decomposed into operators ({time.perf_counter() - t0:.1f}s)")
    placement = place_lowered(low, cluster, opts)
    if opts.emit == "plan":
        return placement.table()
    out = Path(out_dir or Path("build") / Path(graph_path).stem)
    _write_build(low, placement.cluster, placement, graph_path, out, opts)
    _log(opts, f"build written to {out} ({time.perf_counter() - t0:.1f}s)")
    placement.build_dir = out
    return placement


def _write_build(low: Lowered, cluster: Cluster, placement: Placement, graph_path, out: Path,
                 opts: CompileOptions) -> None:
    where = {}
    for op in low.ops:
        if op.kind == "tool":
            where.setdefault(op.attrs["callee"], op.loc)
    tools = record_tools({n: low.graph.tools[n] for n in where}, where) if where else None  # before any work
    used = {op.device for op in placement.ops if op.kind == "call"}
    for name in sorted(used):
        if cluster.devices[name].runtime is None:
            raise AgentError(f"device '{name}' ({cluster.devices[name].type}) has no agentc runtime; "
                             f"`agentc place` can plan for it, but a build cannot run there")
    files_of = {name: module_file(name) for name in used}
    with low.ctx:
        run_pass(low.module, AssignDevices({op.name: (op.device, op.start, op.end) for op in placement.ops}))
        placed, _, _ = build_plan(low.module, low.graph.name)  # the plan, as the IR now says it
        outline = OutlineDeviceModules({n: d.runtime for n, d in cluster.devices.items()})
        run_pass(low.module, outline)
        operators_text = low.module.operation.get_asm(enable_debug_info=True)
    plan = {
        "agent": low.graph.name, "inputs": [v.name for v in low.graph.inputs], "input_ids": low.inputs,
        "outputs": low.outputs, "sla_ms": placement.sla_ms,
        "placement": {k: v for k, v in placement.to_json().items() if k != "solve_time_s"},  # reproducible
        "devices": {n: {"runtime": cluster.devices[n].runtime, "module": files_of[n]} for n in sorted(used)},
        "ops": [op.to_json() for op in placed],
        "indexes": {n: idx.passages for n, idx in low.graph.indexes.items()},
    }
    out.mkdir(parents=True, exist_ok=True)
    # No manifest until every file is written: a build cut short is refused at load.
    (out / "manifest.json").unlink(missing_ok=True)
    graph_file = Path(graph_path).resolve()
    files = {"agent.mlir": low.agent_text.encode(), "operators.mlir": operators_text.encode(),
             "graph.py": graph_file.read_bytes(), **_corpora(low.graph, graph_file.parent)}
    modules = {}
    for device, text in outline.device_modules.items():
        kind = KINDS[cluster.devices[device].runtime]
        t1 = time.perf_counter()
        vmfb, hit = compile_module(text, kind.target, kind.compile_flags, device)
        _log(opts, f"{device}: {'cached' if hit else 'compiled'} module ({time.perf_counter() - t1:.1f}s)")
        files[files_of[device] + ".vmfb"] = vmfb
        files[files_of[device] + ".mlir"] = text.encode()
        modules[device] = {"target": kind.target, "flags": list(kind.compile_flags), "cached": hit}
    plan["tokenizers"] = _tokenizer_files(low.ops, files)
    if tools:
        files[TOOLS_FILE] = tools
    earlier = list(out.glob("*.vmfb")) + [out / (p.stem + ".mlir") for p in out.glob("*.vmfb")]
    for stale in earlier + list(out.glob("tokenizers/*.json")) + [out / TOOLS_FILE]:
        if stale.relative_to(out).as_posix() not in files:  # left by an earlier build of this directory
            stale.unlink(missing_ok=True)
    weights = write_build_weights(low.weights, out)
    plan["weights"] = sorted(weights)
    files["plan.json"] = json.dumps(plan, indent=1).encode()
    hashes = {name: store.write_file(out / name, data) for name, data in files.items()}
    hashes.update({rel: entry["file_sha256"] for rel, entry in weights.items()})
    manifest = {"graph": str(graph_file), "modules": modules, "weights": weights,
                "files": dict(sorted(hashes.items()))}
    store.write_file(out / "manifest.json", json.dumps(manifest, indent=1).encode())
    store.remember_all({out / name: sha for name, sha in hashes.items()})  # loads need not hash them


def _tokenizer_files(ops, files: dict[str, bytes]) -> dict[str, str]:
    """The tokenizers of the build's host operators, copied in (`tokenizers/<model>.json`)
    so that the runtime needs no model package. Returns {model: relative path}."""
    out = {}
    for op in ops:
        name = op.attrs.get("model") if op.kind in ("tokenize", "detokenize") else None
        if name is None or name in out:
            continue
        m = registry.model(name)
        if hasattr(m, "tokenizer_json"):
            rel = f"tokenizers/{name.partition('@')[0]}.json"
            files[rel] = m.tokenizer_json()
            out[name] = rel
    return out


def _corpora(graph, graph_dir: Path) -> dict[str, bytes]:
    """The corpus files the graph's indexes read, at their paths relative to graph.py, so a
    build directory runs on a machine without the sources."""
    out = {}
    for index in graph.indexes.values():
        try:
            rel = index.path.resolve().relative_to(graph_dir)
        except ValueError:
            continue  # an absolute path outside the graph's folder: read from where it is
        out[rel.as_posix()] = index.path.read_bytes()
    return out


def module_file(device: str) -> str:
    """A device's module file stem: its name, with instance separators made file-safe."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", device)


def _admission_check(ops, cluster: Cluster, weights, call_times, row_loops) -> None:
    """An operator that no device of the cluster can both compute right and hold the
    weights of is an error naming it and why (placement admits devices the same way)."""
    for op in ops:
        if op.kind != "call":
            continue
        need = sum(weights.get(op.callee, {}).values())
        right = [cluster.devices[n] for n in call_times[op.callee]]
        if any(d.spec.memory_bytes >= need for d in right):
            continue
        if not right:
            limits = ", ".join(f"{d.name}: {d.spec.max_loop_iterations:.0f}"
                               for d in cluster.devices.values())
            why = (f"it loops over a row of {row_loops[op.callee]:.0f} in one dispatch, longer "
                   f"than every device's max_loop_iterations ({limits}); add a device without "
                   f"that limit, e.g. cpu")
        else:
            why = f"needs {need / 1e6:.1f} MB of weights"
            if len(right) < len(cluster.devices):
                why += f", and only {', '.join(d.name for d in right)} compute it right"
        raise AgentError(f"{op.loc}: node '{op.name}': no listed device can run it ({why}; "
                         f"devices: {cluster.describe()})")
