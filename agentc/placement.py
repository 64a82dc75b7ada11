"""Placement: operators + cost model -> device, start and end for each operator.

Host operators run on the host thread pool; compute calls may run on any listed device
whose memory holds their weights. Transfers are charged by the link between memory spaces
(the host and IREE's CPU driver share one). The schedule comes from CP-SAT (agentc.scheduler),
warm-started with HEFT when available and bounded by a time limit.
"""

from __future__ import annotations

from dataclasses import dataclass

from agentc.cost_models.catalog import Catalog
from agentc.plan import PlanOp, tensor_bytes
from agentc.scheduler.cpsat import solve_cpsat
from agentc.scheduler.heft import heft
from agentc.scheduler.taskgraph import Link, Processor, Task, TaskGraph

HOST = "host"


@dataclass
class Placement:
    ops: list[PlanOp]
    devices: list[str]
    makespan_s: float
    status: str
    lower_bound_s: float
    solve_time_s: float
    sla_ms: float | None
    build_dir: object = None  # set by the compiler once the build is written

    def table(self) -> str:
        rows = [f"{'operator':<34} {'device':<7} {'start ms':>9} {'end ms':>9}"]
        for op in sorted(self.ops, key=lambda o: (o.start, o.name)):
            rows.append(f"{op.name:<34} {op.device:<7} {op.start * 1e3:9.3f} {op.end * 1e3:9.3f}")
        sla = f", SLA {self.sla_ms:.0f} ms" if self.sla_ms else ""
        rows.append(f"predicted latency {self.makespan_s * 1e3:.3f} ms ({self.status}, bound "
                    f"{self.lower_bound_s * 1e3:.3f} ms){sla}")
        return "\n".join(rows)


def build_taskgraph(ops: list[PlanOp], devices: list[str], catalog: Catalog,
                    call_times: dict[str, dict[str, float]], weights: dict[str, dict[str, int]],
                    pinned: dict[str, list[str]] | None = None) -> TaskGraph:
    procs = {HOST: Processor(HOST, capacity=catalog.host_threads, memory_space="host")}
    for d in devices:
        s = catalog.devices[d]
        procs[d] = Processor(d, memory_bytes=s.memory_bytes, cost_per_s=s.cost_per_hour / 3600,
                             memory_space=s.memory_space)
    tasks, producer, edges = {}, {}, {}
    for op in ops:
        for v in op.outputs:
            producer[v] = op
        if op.kind == "call":
            cost = {d: call_times[op.callee][d] for d in devices if d in call_times[op.callee]}
            if pinned and op.name in pinned:
                cost = {d: t for d, t in cost.items() if d in pinned[op.name]}
            resident = weights.get(op.callee, {})
            tasks[op.name] = Task(op.name, cost, resident)
        else:
            latency = op.attrs.get("latency_ms", 0) / 1e3 if op.kind == "tool" else \
                catalog.host_latency_s.get(op.kind, 1e-5)
            tasks[op.name] = Task(op.name, {HOST: latency})
    for op in ops:
        deps = list(op.inputs) + [g for g, _ in op.guards]
        for v in deps:
            if v in producer:
                u = producer[v].name
                edges[(u, op.name)] = edges.get((u, op.name), 0) + tensor_bytes(
                    producer[v].out_types[producer[v].outputs.index(v)])
        for name in op.attrs.get("after", []):
            if name in tasks:
                edges.setdefault((name, op.name), 0)
    links = {}
    spaces = {p: (procs[p].memory_space or p) for p in procs}
    for p in procs:
        for q in procs:
            a, b = spaces[p], spaces[q]
            if p == q or a == b:
                continue
            lk = catalog.links.get((a, b)) or catalog.links.get((b, a))
            if lk:
                links[(p, q)] = Link(*lk)
    return TaskGraph(tasks, procs, edges, links)


def place(ops: list[PlanOp], devices: list[str], catalog: Catalog, call_times, weights,
          sla_ms: float | None, time_limit_s: float = 5.0, pinned=None) -> Placement:
    tg = build_taskgraph(ops, devices, catalog, call_times, weights, pinned)
    hint = heft(tg)  # warm start, and the answer if CP-SAT finds nothing better in time
    sched = solve_cpsat(tg, time_limit_s=time_limit_s, hint=hint)
    if hint is not None and hint.makespan < sched.makespan:
        sched = hint
    for op in ops:
        slot = sched.assignment[op.name]
        op.device, op.start, op.end = slot.processor, slot.start, slot.end
    return Placement(ops, devices, sched.makespan, sched.status, sched.lower_bound,
                     sched.solve_time_s, sla_ms)
