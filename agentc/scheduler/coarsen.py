"""Chain coarsening: fewer placement decisions for large graphs.

A task with exactly one successor that has no other predecessor, both able to run on the
same processors, forms a chain link; whole chains become one placement unit whose cost on
each processor is the sum of its members' costs. The exact model then has one placement
per unit instead of one per task, which is what keeps CP-SAT inside its time budget on
graphs of thousands of operators (transformer layers are long chains).

This is a restriction, not a relaxation: a chain's tasks run back to back on one
processor, so the coarse optimum may exceed the true one. Callers must therefore not
report the coarse model's bound as a bound on the original graph (`solve` does not).
External edges only enter a chain at its head and leave it at its tail (by construction),
so every unit edge is exactly one original edge.
"""

from __future__ import annotations

from dataclasses import dataclass

from agentc.scheduler.listsched import retime
from agentc.scheduler.taskgraph import Schedule, Slot, Task, TaskGraph


@dataclass
class Coarsening:
    """`coarse` is the unit graph; `members[unit]` lists the unit's tasks in chain order."""

    coarse: TaskGraph
    members: dict[str, list[str]]

    @property
    def unit_of(self) -> dict[str, str]:
        return {t: u for u, ts in self.members.items() for t in ts}


def coarsen_chains(tg: TaskGraph) -> Coarsening:
    succs, preds = tg.successors(), tg.predecessors()

    def linked(u: str) -> str | None:
        """u's chain successor, if u -> v is a chain link."""
        if len(succs[u]) != 1:
            return None
        v = succs[u][0]
        if len(preds[v]) != 1 or set(tg.tasks[u].cost) != set(tg.tasks[v].cost):
            return None
        return v

    has_link_in = set()
    for u in tg.tasks:
        v = linked(u)
        if v is not None:
            has_link_in.add(v)
    members: dict[str, list[str]] = {}
    for t in tg.tasks:
        if t in has_link_in:
            continue
        chain = [t]
        nxt = linked(t)
        while nxt is not None:
            chain.append(nxt)
            nxt = linked(nxt)
        members[t] = chain

    tasks = {}
    for unit, chain in members.items():
        cost = {p: sum(tg.tasks[t].cost[p] for t in chain) for p in tg.tasks[unit].cost}
        resident: dict[str, float] = {}
        for t in chain:
            for g, size in tg.tasks[t].resident.items():
                resident[g] = max(size, resident.get(g, 0.0))
        tasks[unit] = Task(unit, cost, resident)
    unit_of = {t: u for u, ts in members.items() for t in ts}
    edges = {
        (unit_of[u], unit_of[v]): vol
        for (u, v), vol in tg.edges.items()
        if unit_of[u] != unit_of[v]
    }
    coarse = TaskGraph(tasks, dict(tg.processors), edges, dict(tg.links))
    return Coarsening(coarse, members)


def expand(tg: TaskGraph, c: Coarsening, sched: Schedule) -> Schedule:
    """Per-task slots from a unit schedule: members run back to back from the unit's start."""
    assignment = {}
    for unit, slot in sched.assignment.items():
        t0 = slot.start
        for t in c.members[unit]:
            t1 = t0 + tg.tasks[t].cost[slot.processor]
            assignment[t] = Slot(slot.processor, t0, t1)
            t0 = t1
    fine = Schedule(assignment, sched.makespan, sched.algorithm, sched.status)
    fine.lower_bound, fine.solve_time_s = sched.lower_bound, sched.solve_time_s
    return retime(tg, fine)


def project(tg: TaskGraph, c: Coarsening, sched: Schedule) -> Schedule:
    """A unit schedule from a per-task one (each unit where its head ran), re-timed so it
    is consistent on the unit graph; used to warm-start the coarse model."""
    assignment = {u: sched.assignment[u] for u in c.members}
    coarse = Schedule(assignment, sched.makespan, sched.algorithm, sched.status)
    return retime(c.coarse, coarse)
