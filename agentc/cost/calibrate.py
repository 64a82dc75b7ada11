"""`agentc calibrate BUILD`: run a build on this machine's devices and record what each of
its operators took (agentc.cost.measured), so later compiles price those kernels and host
operations with measurements; prints predicted (as the build was priced) against measured.

The first request warms up (first-use costs: lazy tokenizer loads, allocations) and is not
recorded; each device kernel gets the median over its calls in the other requests, each
host operation kind (per model) the median of its calls, and each device (and the host)
the runtime's median time between operators, per operator of that device: the idle time
before it, when no operator of the request ran. A later calibration replaces the records
of the devices it ran on.
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

from agentc.cost import measured
from agentc.cost.kernel_table import kernel_table
from agentc.runtime.explain import by_request, explain


def _kernels(build: Path, plan: dict, catalog) -> dict[tuple[str, str], tuple[str, str, float | None]]:
    """(callee, device) -> (digest, op class, roofline seconds): from the build's plan, or
    (a build written before plans kept them) from its operators.mlir, which needs torch-mlir."""
    table = plan.get("kernels")
    if table is None:
        from torch_mlir import ir

        from agentc.ir import context

        calls = {(op["callee"], op["device"], plan["devices"][op["device"]]["runtime"])
                 for op in plan["ops"] if op["kind"] == "call"}
        with context():
            module = ir.Module.parse((build / "operators.mlir").read_text())
            funcs = {ir.StringAttr(o.attributes["sym_name"]).value: o for o in module.body.operations
                     if o.operation.name == "func.func"}
            table = kernel_table(funcs, calls, {d: catalog.devices.get(d) for _, d, _ in calls})
    return {tuple(k.split("|", 1)): (v["digest"], v["op_class"], v["roofline_s"]) for k, v in table.items()}


def _idle_per_op(events, ops) -> dict[str, float]:
    """A request's time when none of its operators ran (the runtime between them), per
    operator that ran, by the device of the operator each idle stretch came before (`host`
    for host operations)."""
    spans = sorted((e[3], e[4], _device(ops[e[1]])) for e in events if e[1] in ops)
    idle: dict[str, float] = {}
    count: dict[str, int] = {}
    end = spans[0][0]
    for s, e, device in spans:
        idle[device] = idle.get(device, 0.0) + max(0.0, s - end)
        count[device] = count.get(device, 0) + 1
        end = max(end, e)
    return {d: idle[d] / count[d] for d in idle}


def _device(op: dict) -> str:
    return op["device"] if op["kind"] == "call" else "host"


def calibrate(build: str, inputs: dict, requests: int = 5, say=print) -> dict:
    """Run `requests` + 1 requests; record; return {"before": Explained, "kernels": n, "host": n}."""
    from agentc.runtime.session import Session

    build = Path(build)
    with Session(build, trace_events=None) as s:
        plan = s.plan
        for i in range(requests + 1):
            s.run(inputs)
            say(f"calibrate: request {i + 1}/{requests + 1}", file=sys.stderr)
        events = by_request(s.trace.events)[1:]
    ops = {op["name"]: op for op in plan["ops"]}
    before = explain(plan["ops"], plan["placement"]["predicted_ms"], events)
    kernel_times: dict[tuple[str, str], list[float]] = {}
    host_times: dict[tuple[str, str], list[float]] = {}
    for request in events:
        for _, name, _, start, end, _ in request:
            op = ops.get(name)
            if op is None:
                continue
            if op["kind"] == "call":
                kernel_times.setdefault((op["callee"], op["device"]), []).append(end - start)
            else:
                host_times.setdefault((op["kind"], str(op["attrs"].get("model", ""))), []).append(end - start)
    from agentc.cost.catalog import load_catalog

    kernels = _kernels(build, plan, load_catalog())
    for (callee, device), ts in kernel_times.items():
        digest, op_class, roofline = kernels[(callee, device)]
        seconds = statistics.median(ts)
        measured.record_kernel(digest, device, seconds, len(ts))
        if roofline:
            measured.record_ratio(op_class, device, digest, seconds / roofline)
    # per device; a later calibration replaces what an earlier one recorded for its devices
    gaps = [_idle_per_op(r, ops) for r in events]
    for device in {d for g in gaps for d in g}:
        measured.record_op_gap(device, statistics.median(g[device] for g in gaps if device in g))
    for (kind, model), ts in host_times.items():
        if kind != "tool":  # a tool declares its latency, and its time depends on its inputs
            measured.record_host(kind, model, statistics.median(ts), len(ts))
    return {"before": before, "kernels": len(kernel_times), "host": len(host_times)}
