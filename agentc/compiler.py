"""The compile pipeline, stage by stage, each with one input and one output type:

    graph.py --ir.lower.lower--> Lowered (agent IR, operators)        --emit agent | operators
      --placement.policy.place_lowered--> Placement (device, start, end)    --emit plan
      --build.write.realize--> the IR placed (assign-devices) and one
        IREE input module per device (outline-device-modules)         --emit placed | devices
      --build.write.write_build--> build directory (IREE modules, weights, plan, manifest)

This module holds the options, resolves the devices or cluster, and runs the stages.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from agentc.build.write import precision, realize, write_build
from agentc.cost.catalog import load_catalog
from agentc.devices import KINDS, usable
from agentc.frontend.graph import AgentError
from agentc.ir.lower import lower
from agentc.placement.cluster import Cluster, local_cluster
from agentc.placement.cluster_file import load_cluster
from agentc.placement.place import Placement
from agentc.placement.policy import log, place_lowered

STAGES = ("agent", "operators", "plan", "placed", "devices")


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
    # Forced placement: operator name -> device for every compute operator (tests and
    # experiments pin layers to devices); the solver then only schedules them.
    assign: Callable[[str], str] | None = None


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
    low = lower(graph_path, opts.agent, opts.emit, cluster, opts.max_nodes,
                granularity="layer" if opts.assign is not None else None)
    if isinstance(low, str):
        return low
    low = _settle_searches(low, cluster, opts, lambda searches: lower(
        graph_path, opts.agent, opts.emit, cluster, opts.max_nodes,
        granularity="layer" if opts.assign is not None else None, searches=searches))
    log(opts, f"decomposed into operators ({time.perf_counter() - t0:.1f}s)")
    prec = precision(low.weights)
    log(opts, f"precision: compute {prec['compute']}; weights " +
        ", ".join(f"{m} {d}" for m, d in prec["weights"].items()))
    for op in low.ops:
        if op.kind == "ann_search":
            log(opts, f"{op.name}: approximate search, recall@{op.attrs['k']} {op.attrs['recall']:.3f} against "
                      f"exact search, {op.attrs['latency_ms']:.3f} ms per query (measured here)")
    placement = place_lowered(low, cluster, opts)
    if opts.emit == "plan":
        return placement.table()
    if opts.emit in ("placed", "devices"):
        placed, device_modules, _ = realize(low, placement)
        if opts.emit == "placed":
            return placed
        return "\n".join(f"// -----// device module: {d} //----- //\n{text}" for d, text in sorted(device_modules.items()))
    _check_runnable(low.graph)
    out = Path(out_dir or Path("build") / Path(graph_path).stem)
    write_build(low, placement, graph_path, out, opts)
    log(opts, f"build written to {out} ({time.perf_counter() - t0:.1f}s)")
    placement.build_dir = out
    return placement


def _settle_searches(low, cluster, opts, relower):
    """Indexes with search="auto": exact or approximate by the cost model, lowered again
    when any goes approximate (it is one host op instead of two kernels)."""
    from agentc.cost.search_choice import choose

    choices = choose(low, cluster)
    for c in choices:
        log(opts, c.describe())
    if any(c.choice == "ann" for c in choices):
        return relower({c.index: c.choice for c in choices})
    return low


def _check_runnable(graph) -> None:
    """A model given by config.json alone can be placed and priced, not compiled."""
    from agentc.models import registry

    for node in graph.all_nodes():
        name = node.attrs.get("model")
        ckpt = getattr(registry.model(name), "ckpt", None) if isinstance(name, str) else None
        if ckpt is not None and not ckpt.has_weights:
            raise AgentError(f"{node.where()}: model '{name}' has no weights in {ckpt.dir} (config.json only): "
                             f"it can be placed and priced with `agentc place`, not compiled")


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
    low = _settle_searches(low, resolved, opts, lambda searches: lower(
        graph_path, agent, cluster=resolved, max_nodes=max_nodes, searches=searches))
    placement = place_lowered(low, resolved, opts)
    placement.agent, placement.inputs = low.graph.name, [v.name for v in low.graph.inputs]
    return placement


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
    if opts.assign is not None and not callable(opts.assign):
        raise AgentError(f"assign: expected a function of an operator name, got {type(opts.assign).__name__}")
    if opts.agent is not None and not isinstance(opts.agent, str):
        raise AgentError(f"--agent: expected an agent name, got {opts.agent!r}")
