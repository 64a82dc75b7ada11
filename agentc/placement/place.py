"""Placement: operators + cost model + cluster -> device, start and end for each operator.

Host operators run on the host thread pool; compute calls may run on any cluster device
that computes them right (`compiler.estimate`) and whose memory holds their weights.
Transfers are charged by the link between the two devices, and only when they do not share
memory (the host and IREE's CPU driver do).
The schedule comes from `agentc.scheduler.solve`: baselines and HEFT first, the best of
them warm-starts CP-SAT under a time limit, so the answer is never worse than a heuristic.

Objectives: "latency" minimises the makespan; "tco" minimises the cost per request
(busy time x rate, plus each used device's reservation share) subject to the SLA.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field

from agentc.cost import measured
from agentc.ir.plan import PlanOp
from agentc.placement.cluster import Cluster
from agentc.scheduler.bounds import lower_bound
from agentc.scheduler.cost import cost_lower_bound
from agentc.scheduler.explain import SlaReport
from agentc.scheduler.solve import solve
from agentc.scheduler.taskgraph import OBJECTIVES, Link, Processor, Schedule, Task, TaskGraph

HOST = "host"


@dataclass
class Transfer:
    value: str  # the value moved
    producer: str
    consumer: str
    src: str
    dst: str
    bytes: int
    seconds: float


@dataclass
class Placement:
    ops: list[PlanOp]
    devices: list[str]
    objective: str
    makespan_s: float
    cost_per_request: float
    status: str
    lower_bound_s: float
    solve_time_s: float
    sla_ms: float | None
    utilisation: dict[str, float] = field(default_factory=dict)
    transfers: list[Transfer] = field(default_factory=list)
    algorithm: str = ""
    cost_lower_bound: float = 0.0
    build_dir: object = None  # set by the compiler once the build is written
    cluster: Cluster | None = field(default=None, repr=False)  # the devices listed to the solver
    schedule: Schedule | None = field(default=None, repr=False)
    taskgraph: TaskGraph | None = field(default=None, repr=False)
    # every device each operator could use, pinned or not: what a re-placement chooses from
    choices: TaskGraph | None = field(default=None, repr=False)
    agent: str = ""  # the graph's agent and input names, set by the compiler
    inputs: list[str] = field(default_factory=list)

    @property
    def predicted_ms(self) -> float:
        return self.makespan_s * 1e3

    @property
    def gap(self) -> float:
        """Distance to the proven bound of the objective solved for (latency or cost)."""
        value, bound = ((self.cost_per_request, self.cost_lower_bound) if self.objective == "tco"
                        else (self.makespan_s, self.lower_bound_s))
        return max(0.0, 1 - bound / value) if value > 0 else 0.0

    @property
    def meets_sla(self) -> bool:
        return self.sla_ms is None or self.predicted_ms <= self.sla_ms + 1e-9

    def table(self) -> str:
        width = max([len(op.name) for op in self.ops] + [8])
        dwidth = max([len(d) for d in self.devices] + [6])
        rows = [f"{'operator':<{width}} {'device':<{dwidth}} {'start ms':>9} {'end ms':>9}"]
        for op in sorted(self.ops, key=lambda o: (o.start, o.name)):
            rows.append(f"{op.name:<{width}} {op.device:<{dwidth}} {op.start * 1e3:9.3f} {op.end * 1e3:9.3f}")
        return "\n".join(rows + self._footer())

    def summary(self) -> str:
        """One row per graph node (its operators grouped): the devices they run on and the
        span they take, then the totals `table` ends with."""
        nodes: dict[str, list[PlanOp]] = {}
        for op in self.ops:
            nodes.setdefault(op.name.split("/", 1)[0], []).append(op)
        width = max([len(n) for n in nodes] + [4])
        rows = [f"{'node':<{width}} {'operators':>9}  {'devices':<16} {'start ms':>9} {'end ms':>9}"]
        for name, ops in sorted(nodes.items(), key=lambda kv: (min(o.start for o in kv[1]), kv[0])):
            devices = ", ".join(sorted({o.device for o in ops}))
            rows.append(f"{name:<{width}} {len(ops):>9}  {devices:<16} {min(o.start for o in ops) * 1e3:9.1f} "
                        f"{max(o.end for o in ops) * 1e3:9.1f}")
        return "\n".join(rows + self._footer())

    def _footer(self) -> list[str]:
        rows = []
        busy = ", ".join(f"{d} {u:.0%}" for d, u in self.utilisation.items() if u > 0 or d == HOST)
        idle = sum(1 for d, u in self.utilisation.items() if u == 0 and d != HOST)
        busy += f" (+{idle} idle)" if idle else ""
        if self.cluster is not None and self.cluster.size > len(self.cluster.devices):
            busy += f"; listed {len(self.cluster.devices)} of {self.cluster.size} devices"
        sla = f", SLA {self.sla_ms:g} ms" if self.sla_ms else ""
        rows.append(f"predicted latency {self.predicted_ms:.3f} ms (bound {self.lower_bound_s * 1e3:.3f} ms){sla}")
        rows.append(f"cost per request ${self.cost_per_request:.3g} (bound ${self.cost_lower_bound:.3g}); "
                    f"objective {self.objective}: {self.status}, gap {self.gap:.1%}")
        rows.append(f"utilisation: {busy}; {len(self.transfers)} transfers")
        return rows

    def to_json(self) -> dict:
        return {
            "objective": self.objective, "status": self.status, "algorithm": self.algorithm,
            "predicted_ms": self.predicted_ms, "lower_bound_ms": self.lower_bound_s * 1e3,
            "gap": self.gap, "sla_ms": self.sla_ms, "meets_sla": self.meets_sla,
            "cost_per_request": self.cost_per_request, "cost_lower_bound": self.cost_lower_bound,
            "solve_time_s": self.solve_time_s,
            "utilisation": self.utilisation,
            "ops": [{"name": op.name, "kind": op.kind, "device": op.device,
                     "start_ms": op.start * 1e3, "end_ms": op.end * 1e3} for op in self.ops],
            "transfers": [t.__dict__ for t in self.transfers],
        }

    def __str__(self) -> str:
        return json.dumps(self.to_json(), indent=1)


def build_taskgraph(ops: list[PlanOp], cluster: Cluster, call_times: dict[str, dict[str, float]],
                    weights: dict[str, dict[str, int]], forced: dict[str, str] | None = None) -> TaskGraph:
    """Operators -> scheduler task graph: one processor per cluster device plus the host."""
    procs = {HOST: Processor(HOST, capacity=cluster.host_threads, memory_space="host")}
    for d in cluster.devices.values():
        procs[d.name] = Processor(d.name, memory_bytes=d.spec.memory_bytes,
                                  cost_per_s=d.spec.cost_per_hour / 3600,
                                  memory_space=d.spec.memory_space, reserve_cost=d.reserve_cost,
                                  shares=f"{d.node or ''}:{d.spec.cores}" if d.spec.cores else "")
    tasks = {}
    # the runtime between operators, as calibrated here: per device, under the name its
    # kernels are measured as (agentc.cost.estimate)
    gap = {HOST: measured.op_gap_seconds(HOST),
           **{d.name: measured.op_gap_seconds(d.spec.measured_as or d.spec.name) for d in cluster.devices.values()}}
    host_measured: dict[tuple[str, str], float | None] = {}  # one lookup per (kind, model), not per op
    for op in ops:
        if op.kind == "call":
            fits = {d: t + gap[d] for d, t in call_times[op.callee].items() if d == (forced or {}).get(op.name, d)
                    if sum(weights.get(op.callee, {}).values()) <= procs[d].memory_bytes}
            tasks[op.name] = Task(op.name, fits, dict(weights.get(op.callee, {})))
        else:
            # tools declare their latency, ann_search measured its own at compile time; other
            # host ops were measured by agentc calibrate, else the catalog's latency
            if "latency_ms" in op.attrs:
                latency = op.attrs["latency_ms"] / 1e3
            else:
                what = (op.kind, str(op.attrs.get("model", "")))
                if what not in host_measured:
                    host_measured[what] = measured.host_seconds(*what)
                latency = host_measured[what]
            if latency is None:
                latency = cluster.host_latency_s.get(op.kind, 1e-5)
            tasks[op.name] = Task(op.name, {HOST: latency + gap[HOST]})
    edges = {}
    for (u, v), (_, nbytes) in _dependencies(ops).items():
        edges[(u, v)] = edges.get((u, v), 0) + nbytes
    links = {pair: Link(*lk) for pair, lk in cluster.links.items()}
    for d in cluster.devices.values():
        if d.host_link and procs[d.name].memory_space != "host":
            links[(HOST, d.name)] = links[(d.name, HOST)] = Link(*d.host_link)
    return TaskGraph(tasks, procs, edges, links)


def _dependencies(ops: list[PlanOp]) -> dict[tuple[str, str], tuple[str, int]]:
    """(producer, consumer) -> (one value moved, bytes): data, guards and `after=` order."""
    producer = {v: op for op in ops for v in op.outputs}
    names = {op.name for op in ops}
    deps = {}
    for op in ops:
        for v in list(op.inputs) + [g for g, _ in op.guards]:
            if v in producer:
                p = producer[v]
                nbytes = p.out_bytes[p.outputs.index(v)]
                old = deps.get((p.name, op.name), (v, 0))
                deps[(p.name, op.name)] = (old[0], old[1] + nbytes)
        for name in op.attrs.get("after", []):
            if name in names:
                deps.setdefault((name, op.name), ("", 0))
    return deps


def place(ops: list[PlanOp], cluster: Cluster, call_times, weights, sla_ms: float | None,
          objective: str = "latency", time_limit_s: float = 5.0,
          arrival_rate: float | None = None, forced: dict[str, str] | None = None) -> Placement:
    """Solve; the Placement's ops are copies of `ops` with device/start/end. `forced` pins
    operators (by name) to one device each; the solver then only schedules. Raises ScheduleError when nothing can
    be placed, or (objective "tco") when the SLA cannot be met; its `report` explains why."""
    if objective not in OBJECTIVES:
        from agentc.frontend.graph import AgentError

        raise AgentError(f"--objective: unknown objective '{objective}' (known: {', '.join(OBJECTIVES)})")
    tg = build_taskgraph(ops, cluster, call_times, weights, forced)
    sla_s = sla_ms / 1e3 if sla_ms is not None else None
    sched = solve(tg, "cpsat", time_limit_s=time_limit_s, objective=objective, sla=sla_s,
                  arrival_rate=arrival_rate)
    placement = _placement(ops, tg, sched, list(cluster.devices), objective, sla_ms)
    placement.choices = build_taskgraph(ops, cluster, call_times, weights) if forced else tg
    return placement


def _placement(ops, tg: TaskGraph, sched: Schedule, devices, objective, sla_ms) -> Placement:
    ops = [dataclasses.replace(op, device=s.processor, start=s.start, end=s.end)
           for op, s in ((op, sched.assignment[op.name]) for op in ops)]
    by_name = {op.name: op for op in ops}
    transfers = []
    for (u, v), (value, nbytes) in _dependencies(ops).items():
        a, b = by_name[u], by_name[v]
        seconds = tg.comm_time(u, v, a.device, b.device)
        if not tg.same_memory(a.device, b.device) and nbytes:
            transfers.append(Transfer(value, u, v, a.device, b.device, nbytes, seconds))
    if objective == "latency":
        latency_bound, cost_bound = sched.lower_bound, cost_lower_bound(tg)
    else:
        latency_bound, cost_bound = lower_bound(tg), sched.lower_bound
    return Placement(ops, devices, objective, sched.makespan, sched.cost, sched.status,
                     min(latency_bound, sched.makespan), sched.solve_time_s, sla_ms,
                     dict(sched.utilisation), transfers, sched.algorithm, cost_bound,
                     schedule=sched, taskgraph=tg)


def explain(report: SlaReport) -> str:
    """An unreachable SLA in the units a user reads: milliseconds, operators, devices."""
    if report.proven_unreachable:
        head = (f"SLA {report.sla * 1e3:g} ms is unreachable: the lowest achievable latency is "
                f"{report.best_latency * 1e3:.3f} ms (proven lower bound {report.lower_bound * 1e3:.3f} ms)")
    else:
        head = (f"SLA {report.sla * 1e3:g} ms not met: predicted latency {report.best_latency * 1e3:.3f} ms "
                f"(lower bound {report.lower_bound * 1e3:.3f} ms)")
    shares = {"compute": report.compute_time, "memory": report.memory_time, "link": report.link_time}
    lines = [head, f"binding resource: {report.binding} (" +
             ", ".join(f"{k} {v * 1e3:.3f} ms" for k, v in shares.items()) + " on the critical path)"]
    for b in report.blocked:
        lines.append(f"  '{b.task}' cannot keep its {b.need / 1e6:.1f} MB of weights on {b.fastest} "
                     f"({b.memory_bytes / 1e6:.1f} MB); it runs on {b.runs_on}, {b.lost * 1e3:.3f} ms slower")
    lines.append("critical path:")
    for st in report.path:
        what = f"{st.task} on {st.processor}" if st.kind == "run" else f"{st.task} over {st.processor}"
        lines.append(f"  {st.start * 1e3:9.3f} {st.end * 1e3:9.3f} ms  {st.kind:<8} {what}")
    return "\n".join(lines)
