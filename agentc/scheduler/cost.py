"""What a schedule costs per request, and how busy it keeps each processor.

One definition, used for every algorithm's schedule, so that a baseline, HEFT and CP-SAT
are compared on the same number, and used to check CP-SAT's answer (which works with
integer-scaled costs) exactly.

Two ways of paying for processors:

- per use (no arrival rate): a request pays `cost_per_s` x the time each processor spends
  on its tasks (busy time: the sum of their durations), plus `reserve_cost` once for each
  processor it runs anything on;
- reserved, pipelined (arrival rate R requests/s): every processor the placement uses is
  paid all the time, so a request pays `cost_per_s / R` for each; nothing else. Then each
  processor must keep up: busy time x R <= capacity (utilisation <= 1).

`cost_lower_bound` is the matching solver-free bound, an LP relaxation.
"""

from __future__ import annotations

import math

from ortools.linear_solver import pywraplp

from agentc.scheduler.ranks import topo_positions
from agentc.scheduler.taskgraph import TOL, Schedule, TaskGraph, sla_limit


def busy_times(tg: TaskGraph, sched: Schedule) -> dict[str, float]:
    """Per processor, the sum of the run times of the tasks placed on it."""
    busy = {p: 0.0 for p in tg.processors}
    for t, s in sched.assignment.items():
        busy[s.processor] += tg.tasks[t].cost[s.processor]
    return busy


def used_processors(sched: Schedule) -> set[str]:
    """The processors a placement runs anything on (a zero-time task counts)."""
    return {s.processor for s in sched.assignment.values()}


def request_cost(tg: TaskGraph, sched: Schedule, arrival_rate: float | None = None) -> float:
    """Cost per request of `sched`, per use or (with `arrival_rate`) reserved."""
    used = used_processors(sched)
    if arrival_rate is not None:
        return sum(tg.processors[p].cost_per_s for p in used) / arrival_rate
    busy = busy_times(tg, sched)
    return sum(tg.processors[p].cost_per_s * b for p, b in busy.items()) + sum(
        tg.processors[p].reserve_cost for p in used
    )


def utilisation(
    tg: TaskGraph, sched: Schedule, arrival_rate: float | None = None
) -> dict[str, float]:
    """Per processor, the share of its capacity the work takes: busy x R / capacity under
    an arrival rate R, else busy / (capacity x makespan) within the one request."""
    busy = busy_times(tg, sched)
    out = {}
    for p, b in busy.items():
        cap = tg.processors[p].capacity
        if arrival_rate is not None:
            out[p] = b * arrival_rate / cap
        else:
            out[p] = b / (cap * sched.makespan) if sched.makespan > 0 else 0.0
    return out


def annotate(
    tg: TaskGraph,
    sched: Schedule,
    arrival_rate: float | None = None,
    sla: float | None = None,
) -> Schedule:
    """Fill in `cost`, `busy_time`, `utilisation`, `sla` and `arrival_rate`; returns it."""
    sched.busy_time = busy_times(tg, sched)
    sched.utilisation = utilisation(tg, sched, arrival_rate)
    sched.cost = request_cost(tg, sched, arrival_rate)
    sched.sla, sched.arrival_rate = sla, arrival_rate
    return sched


def within_limits(sched: Schedule, sla: float | None, arrival_rate: float | None) -> bool:
    """Meets the SLA and, under an arrival rate, keeps every utilisation <= 1. Needs an
    annotated schedule."""
    if sla is not None and sched.makespan > sla_limit(sla):
        return False
    return arrival_rate is None or all(u <= 1 + TOL for u in sched.utilisation.values())


def _levels(tg: TaskGraph) -> tuple[dict[str, float], dict[str, float]]:
    """For each task, the least time before it can start and after it ends (every task at
    its fastest processor, transfers free)."""
    preds, succs = tg.predecessors(), tg.successors()
    fast = {t: min(task.cost.values()) for t, task in tg.tasks.items()}
    pos = topo_positions(tg)
    order = sorted(tg.tasks, key=lambda t: pos[t])
    before: dict[str, float] = {}
    for t in order:
        before[t] = max((before[u] + fast[u] for u in preds[t]), default=0.0)
    after: dict[str, float] = {}
    for t in reversed(order):
        after[t] = max((after[v] + fast[v] for v in succs[t]), default=0.0)
    return before, after


def cost_lower_bound(
    tg: TaskGraph, sla: float | None = None, arrival_rate: float | None = None
) -> float:
    """A cost per request no schedule meeting `sla` (and `arrival_rate`) can beat; math.inf
    when the relaxation already shows none exists.

    LP relaxation: tasks may be split across processors; a processor is "used" to the
    largest share of any task on it (and, under an arrival rate, to the share of its
    capacity the work takes). A task may not use a processor on which the longest path
    through it would already exceed the SLA. Memory and transfers are ignored."""
    if not tg.tasks:
        return 0.0
    lp = pywraplp.Solver.CreateSolver("GLOP")
    if lp is None:
        return 0.0
    allowed = {t: dict(task.cost) for t, task in tg.tasks.items()}
    if sla is not None:
        before, after = _levels(tg)
        limit = sla_limit(sla)
        for t, costs in allowed.items():
            allowed[t] = {p: c for p, c in costs.items() if before[t] + c + after[t] <= limit}
            if not allowed[t]:
                return math.inf
    used = {p: lp.NumVar(0.0, 1.0, f"used[{p}]") for p in tg.processors}
    load: dict[str, list] = {p: [] for p in tg.processors}
    objective = []
    for t, costs in allowed.items():
        parts = []
        for p, c in costs.items():
            x = lp.NumVar(0.0, 1.0, f"{t}@{p}")
            parts.append(x)
            lp.Add(x <= used[p])
            load[p].append(c * x)
            if arrival_rate is None:
                objective.append(tg.processors[p].cost_per_s * c * x)
        lp.Add(sum(parts) == 1)
    for p, proc in tg.processors.items():
        if arrival_rate is None:
            objective.append(proc.reserve_cost * used[p])
        else:
            objective.append(proc.cost_per_s / arrival_rate * used[p])
            if load[p]:
                lp.Add(sum(load[p]) <= proc.capacity / arrival_rate * (1 + TOL) * used[p])
    lp.Minimize(sum(objective))
    status = lp.Solve()
    if status == pywraplp.Solver.INFEASIBLE:
        return math.inf
    if status != pywraplp.Solver.OPTIMAL:
        return 0.0
    # step back by more than GLOP's tolerances, so the bound stays a bound
    return max(0.0, lp.Objective().Value() * (1 - 1e-7) - 1e-12)
