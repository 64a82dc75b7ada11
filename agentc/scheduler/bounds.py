"""Lower bounds on the makespan that need no solver.

Reported next to every schedule so the gap is always visible, and combined with CP-SAT's
own bound (which can be weak when the time limit is short, and which describes a
rounded, possibly coarsened model rather than the graph itself). They ignore memory, and
communication except the transfers no placement avoids, so they hold for any schedule
`check_schedule` accepts.
"""

from __future__ import annotations

import math

from ortools.linear_solver import pywraplp

from agentc.scheduler.listsched import Transfers
from agentc.scheduler.ranks import topo_positions
from agentc.scheduler.taskgraph import TaskGraph


def critical_path_bound(tg: TaskGraph) -> float:
    """Longest path with every task at its fastest processor, each edge paying the least
    transfer any placement of its two ends must make (zero unless every processor that can
    run one end is in another memory than every processor that can run the other: a host
    operator feeding the only GPU, say)."""
    preds = tg.predecessors()
    pos = topo_positions(tg)
    transfers = Transfers(tg)
    finish: dict[str, float] = {}
    for t in sorted(tg.tasks, key=lambda t: pos[t]):
        ready = max((finish[u] + _least_transfer(tg, transfers, u, t) for u in preds[t]), default=0.0)
        finish[t] = ready + min(tg.tasks[t].cost.values())
    return max(finish.values(), default=0.0)


def _least_transfer(tg: TaskGraph, transfers: Transfers, u: str, v: str) -> float:
    least = min(transfers.edge(u, v, p, q) for p in tg.tasks[u].cost for q in tg.tasks[v].cost)
    return 0.0 if math.isinf(least) else least  # no placement at all: leave it to the solver


def work_bound(tg: TaskGraph) -> float:
    """Total work at each task's fastest processor over the total capacity: no schedule
    can do all of it sooner even with perfect balance."""
    capacity = sum(p.capacity for p in tg.processors.values())
    work = sum(min(t.cost.values()) for t in tg.tasks.values())
    return work / capacity if capacity else 0.0


def load_balance_bound(tg: TaskGraph) -> float:
    """The least makespan at which the work fits if tasks could be split across processors
    (an LP: each task's fractions sum to one, each processor does at most capacity x
    makespan). Much tighter than `work_bound` when the fast processors are few: work on
    them is capped, the rest must be done slowly elsewhere."""
    lp = pywraplp.Solver.CreateSolver("GLOP")
    if lp is None or not tg.tasks:
        return 0.0
    makespan = lp.NumVar(0.0, lp.infinity(), "makespan")
    load: dict[str, list] = {p: [] for p in tg.processors}
    for name, task in tg.tasks.items():
        parts = []
        for p, c in task.cost.items():
            x = lp.NumVar(0.0, 1.0, f"{name}@{p}")
            parts.append(x)
            load[p].append(c * x)
        lp.Add(sum(parts) == 1)
    for p, proc in tg.processors.items():
        if load[p]:
            lp.Add(sum(load[p]) <= proc.capacity * makespan)
    lp.Minimize(makespan)
    if lp.Solve() != pywraplp.Solver.OPTIMAL:
        return 0.0
    # step back by more than GLOP's tolerances, so the bound stays a bound
    return max(0.0, makespan.solution_value() * (1 - 1e-9) - 1e-6)


def integral_times(tg: TaskGraph) -> bool:
    """True when every duration and transfer time is a whole number; then every
    left-justified schedule has whole-number times and a bound can be rounded up."""
    costs = (c for t in tg.tasks.values() for c in t.cost.values())
    if not all(float(c).is_integer() for c in costs):
        return False
    if not all(float(v).is_integer() for v in tg.edges.values()):
        return False
    return all(
        float(lk.latency).is_integer() and (math.isinf(lk.bandwidth) or lk.bandwidth == 1)
        for lk in tg.links.values()
    )


def lower_bound(tg: TaskGraph) -> float:
    bound = max(critical_path_bound(tg), work_bound(tg), load_balance_bound(tg))
    if integral_times(tg):
        bound = math.ceil(bound - 1e-9)
    return float(bound)
