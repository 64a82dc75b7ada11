"""The placement problem a build was solved from, kept in the build (`placement.json`) so
that a runtime can place the same operators again when a device is lost, without graph.py,
the models or the cost model: the task graph (each operator's run time on each device,
weights, data moved, links), the devices (runtime and node of each), the objective and SLA.

`replace` solves it again on the surviving devices with CP-SAT, warm-started from the old
placement repaired (operators of lost devices moved to where they finish earliest, the
rest kept): the answer is never worse than keeping what survives.
"""

from __future__ import annotations

import dataclasses
import math

from agentc.scheduler.listsched import list_schedule
from agentc.scheduler.ranks import ready_list_order, upward_rank
from agentc.scheduler.solve import solve
from agentc.scheduler.taskgraph import Link, Processor, Schedule, ScheduleError, Task, TaskGraph

PROBLEM_FILE = "placement.json"
HOST = "host"


def _num(x: float):
    return x if math.isfinite(x) else None  # JSON has no infinity


def _inf(x) -> float:
    return math.inf if x is None else float(x)


def placement_problem(placement, opts) -> dict:
    """What `replace` needs, as JSON."""
    tg = placement.choices or placement.taskgraph
    devices = {n: {"runtime": d.runtime, "node": d.node, "type": d.type}
               for n, d in placement.cluster.devices.items()}
    return {
        "objective": placement.objective, "sla_ms": placement.sla_ms,
        "arrival_rate": getattr(opts, "arrival_rate", None), "time_limit_s": getattr(opts, "time_limit_s", 5.0),
        "devices": devices,
        "processors": [{**dataclasses.asdict(p), "memory_bytes": _num(p.memory_bytes)} for p in tg.processors.values()],
        "tasks": [{"name": t.name, "cost": t.cost, "resident": t.resident} for t in tg.tasks.values()],
        "edges": [[u, v, b] for (u, v), b in tg.edges.items()],
        "links": [[a, b, lk.latency, _num(lk.bandwidth)] for (a, b), lk in tg.links.items()],
        "assignment": {n: s.processor for n, s in placement.schedule.assignment.items()},
    }


def taskgraph(problem: dict, lost: set[str] = frozenset()) -> TaskGraph:
    """The stored task graph without the `lost` devices."""
    procs = {p["name"]: Processor(**{**p, "memory_bytes": _inf(p["memory_bytes"])})
             for p in problem["processors"] if p["name"] not in lost}
    tasks = {}
    for t in problem["tasks"]:
        cost = {p: c for p, c in t["cost"].items() if p in procs}
        tasks[t["name"]] = Task(t["name"], cost, dict(t["resident"]))
    links = {(a, b): Link(lat, _inf(bw)) for a, b, lat, bw in problem["links"] if a in procs and b in procs}
    return TaskGraph(tasks, procs, {(u, v): b for u, v, b in problem["edges"]}, links)


def replace(problem: dict, lost: set[str], previous: dict[str, str], time_limit_s: float | None = None):
    """Place again on the devices not `lost`. `previous`: operator -> device of the
    placement in use. Returns (Schedule, the repaired previous placement's Schedule);
    raises ScheduleError naming an operator no survivor can run."""
    tg = taskgraph(problem, lost)
    for t in tg.tasks.values():
        if not t.cost:
            raise ScheduleError(f"operator '{t.name}' can run on none of the surviving devices "
                                f"({', '.join(p for p in tg.processors if p != HOST) or 'none'})")
    hint = _repaired(tg, previous)
    sla = problem["sla_ms"] / 1e3 if problem.get("sla_ms") else None
    objective = problem["objective"] if sla is not None else "latency"
    limit = time_limit_s if time_limit_s is not None else problem.get("time_limit_s", 5.0)
    try:
        sched = solve(tg, "cpsat", time_limit_s=limit, objective=objective, sla=sla,
                      arrival_rate=problem.get("arrival_rate") if objective == "tco" else None, hint=hint)
    except ScheduleError:
        if objective != "tco":
            raise
        # No placement on the survivors meets the SLA: the fastest, and the miss is reported.
        sched = solve(tg, "cpsat", time_limit_s=limit, objective="latency", sla=sla, hint=hint)
    return sched, hint


def _repaired(tg: TaskGraph, previous: dict[str, str]) -> Schedule | None:
    """The previous placement where its device survives; elsewhere, the earliest finish."""
    def choose(tl, t):
        kept = tl.earliest(t, previous[t]) if previous.get(t) in tg.tasks[t].cost else None
        return kept if kept is not None else tl.best(t, tg.tasks[t].cost)

    try:
        return list_schedule(tg, ready_list_order(tg, upward_rank(tg)), choose, "previous")
    except (ScheduleError, KeyError, TypeError):
        return None  # the old placement cannot be repaired here; the solver's own heuristics remain
