"""Pooling interchangeable processors into one resource before the exact solve.

When no edge carries data (and no link has latency), processors that run every task at the same cost and have no
memory limit are interchangeable: which of them runs a task cannot matter, only how many
run at once. Modelling them as one processor whose capacity is their total removes that
symmetry from CP-SAT's search (k! equivalent placements per schedule), which is what
keeps identical-processor benchmarks (the STG set) from stalling at the bound. Any
schedule of the pool is turned back into one per processor by interval partitioning:
in start order, each task takes a lane that is already free, which exists because the
pool never runs more tasks than its members' total capacity.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from agentc.scheduler.taskgraph import Processor, Schedule, Slot, Task, TaskGraph


@dataclass
class Pooling:
    pooled: TaskGraph
    members: dict[str, list[str]]  # pool name -> processors, in declaration order


def pool_identical(tg: TaskGraph) -> Pooling | None:
    """The pooled graph, or None when nothing can be pooled."""
    if any(v > 0 for v in tg.edges.values()):
        return None
    if tg.edges and any(lk.latency > 0 for lk in tg.links.values()):
        return None  # even an empty transfer pays a link's latency, which the pool drops
    by_column: dict[tuple, list[str]] = {}
    for p, proc in tg.processors.items():
        if not math.isinf(proc.memory_bytes) or proc.shares:  # (a pool's capacity would overlap them)
            key: tuple = ("own", p)
        else:
            key = tuple(t.cost.get(p) for t in tg.tasks.values())
        by_column.setdefault(key, []).append(p)
    if all(len(ps) == 1 for ps in by_column.values()):
        return None
    members = {ps[0]: ps for ps in by_column.values()}
    pool_of = {p: ps[0] for ps in by_column.values() for p in ps}
    procs = {
        head: Processor(
            head,
            capacity=sum(tg.processors[p].capacity for p in ps),
            memory_bytes=tg.processors[head].memory_bytes,
            memory_space=tg.processors[head].memory_space,
        )
        for head, ps in members.items()
    }
    tasks = {
        name: Task(name, {p: c for p, c in t.cost.items() if pool_of[p] == p}, dict(t.resident))
        for name, t in tg.tasks.items()
    }
    return Pooling(TaskGraph(tasks, procs, dict(tg.edges), {}), members)


def to_pool(pooling: Pooling, sched: Schedule) -> Schedule:
    """A per-processor schedule seen as a pooled one (for warm starts)."""
    pool_of = {p: head for head, ps in pooling.members.items() for p in ps}
    assignment = {
        t: Slot(pool_of[s.processor], s.start, s.end) for t, s in sched.assignment.items()
    }
    return Schedule(assignment, sched.makespan, sched.algorithm, sched.status)


def unpool(tg: TaskGraph, pooling: Pooling, sched: Schedule) -> Schedule:
    assignment: dict[str, Slot] = {}
    for head, ps in pooling.members.items():
        lanes = [(p, k) for p in ps for k in range(tg.processors[p].capacity)]
        free = [0.0] * len(lanes)
        mine = sorted(
            (t for t, s in sched.assignment.items() if s.processor == head),
            key=lambda t: (sched.assignment[t].start, sched.assignment[t].end),
        )
        for t in mine:
            s = sched.assignment[t]
            if s.end == s.start:
                assignment[t] = Slot(ps[0], s.start, s.end)
                continue
            lane = min(range(len(lanes)), key=lambda i: (free[i] > s.start + 1e-9, free[i]))
            free[lane] = s.end
            assignment[t] = Slot(lanes[lane][0], s.start, s.end)
    out = Schedule(assignment, sched.makespan, sched.algorithm, sched.status)
    out.lower_bound, out.solve_time_s = sched.lower_bound, sched.solve_time_s
    return out
