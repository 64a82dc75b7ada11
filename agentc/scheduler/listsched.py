"""The bookkeeping every list scheduler shares: processor timelines and transfer times.

HEFT, PEFT, CPOP and the baselines differ only in the order they visit tasks and in how
they pick a processor; all of them then place a task at the earliest gap that fits
(insertion-based), on a processor that can run it, whose memory can hold its resident
weights, and that can receive its inputs over some link. Keeping that here means one
definition of "feasible" for every heuristic, matching what `check_schedule` and the
CP-SAT model enforce.

A processor of capacity c is modelled as c lanes, each running one task at a time; any
placement on lanes runs at most c tasks at once, which is what `check_schedule` asks.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass

from agentc.scheduler.taskgraph import Schedule, ScheduleError, Slot, TaskGraph, sharing

EPS = 1e-9


class Transfers:
    """Transfer times between processors, precomputed once per graph.

    Same semantics as `TaskGraph.comm_time`, except that a needed transfer over a missing
    link costs `math.inf` instead of raising: a heuristic then simply avoids that pair.
    """

    def __init__(self, tg: TaskGraph):
        self.tg = tg
        self.link: dict[tuple[str, str], tuple[float, float] | None] = {}
        for p in tg.processors:
            for q in tg.processors:
                if tg.same_memory(p, q):
                    self.link[p, q] = (0.0, math.inf)
                    continue
                lk = tg.links.get((p, q)) or tg.links.get((q, p))
                self.link[p, q] = None if lk is None else (lk.latency, lk.bandwidth)
        self._mean_cache: dict[tuple[frozenset, frozenset], tuple[float, float]] = {}

    def time(self, volume: float, p: str, q: str) -> float:
        lk = self.link[p, q]
        if lk is None:
            return 0.0 if volume == 0 else math.inf
        if lk[0] == 0.0 and math.isinf(lk[1]):
            return 0.0
        return lk[0] + volume / lk[1]

    def edge(self, u: str, v: str, p: str, q: str) -> float:
        return self.time(self.tg.edges.get((u, v), 0.0), p, q)

    def mean(self, u: str, v: str) -> float:
        """Mean transfer time of edge (u, v) over the distinct processor pairs the two
        tasks could use, as in Topcuoglu et al.: a transfer within one processor is not
        averaged in (it is free and is not a communication). Pairs with no link are left
        out; if no pair remains the mean is 0."""
        volume = self.tg.edges.get((u, v), 0.0)
        if volume == 0:
            return 0.0
        key = (frozenset(self.tg.tasks[u].cost), frozenset(self.tg.tasks[v].cost))
        if key not in self._mean_cache:
            lat = inv = 0.0
            n = 0
            for p in key[0]:
                for q in key[1]:
                    lk = self.link[p, q]
                    if p == q or lk is None:
                        continue
                    lat += lk[0]
                    inv += 0.0 if math.isinf(lk[1]) else 1.0 / lk[1]
                    n += 1
            self._mean_cache[key] = (lat / n, inv / n) if n else (0.0, 0.0)
        lat, inv = self._mean_cache[key]
        return lat + volume * inv


@dataclass
class Placement:
    processor: str
    start: float
    end: float
    lane: int


class Timelines:
    """A partial schedule under construction: busy lanes, resident weights, placements."""

    def __init__(self, tg: TaskGraph, transfers: Transfers | None = None):
        self.tg = tg
        self.transfers = transfers or Transfers(tg)
        self.preds = tg.predecessors()
        # lanes[p][k] = (starts, ends), sorted and non-overlapping
        self.lanes = {
            p: [([], []) for _ in range(max(1, proc.capacity))] for p, proc in tg.processors.items()
        }
        for members in sharing(tg.processors).values():  # one lane for processors sharing hardware
            for p in members[1:]:
                self.lanes[p] = self.lanes[members[0]]
        self.groups: dict[str, dict[str, float]] = {p: {} for p in tg.processors}
        self.used = {p: 0.0 for p in tg.processors}
        self.placed: dict[str, Placement] = {}

    def extra_memory(self, name: str, p: str) -> float:
        held = self.groups[p]
        return sum(size for g, size in self.tg.tasks[name].resident.items() if g not in held)

    def fits(self, name: str, p: str) -> bool:
        return self.used[p] + self.extra_memory(name, p) <= self.tg.processors[p].memory_bytes

    def ready_time(self, name: str, p: str) -> float:
        """When all of the task's inputs could be on p (inf if one cannot get there)."""
        ready = 0.0
        for u in self.preds[name]:
            a = self.placed[u]
            ready = max(ready, a.end + self.transfers.edge(u, name, a.processor, p))
        return ready

    def earliest(self, name: str, p: str, not_before: float = 0.0) -> Placement | None:
        """Insertion-based earliest placement of a task on p, or None if p cannot take it."""
        cost = self.tg.tasks[name].cost.get(p)
        if cost is None or not self.fits(name, p):
            return None
        ready = max(not_before, self.ready_time(name, p))
        if math.isinf(ready):
            return None
        if cost == 0:
            return Placement(p, ready, ready, -1)  # occupies no lane
        best = None
        for k, (starts, ends) in enumerate(self.lanes[p]):
            i = bisect.bisect_right(ends, ready)
            t = ready
            while i < len(starts) and t + cost > starts[i] + EPS:
                t = max(t, ends[i])
                i += 1
            if best is None or t < best.start:
                best = Placement(p, t, t + cost, k)
        return best

    def best(self, name: str, procs=None, key=None) -> Placement:
        """The placement minimising `key(placement)` (default: finish time) over procs;
        ties go to the earlier processor in declaration order. Raises if none exists."""
        best, best_key = None, None
        for p in procs if procs is not None else self.tg.processors:
            pl = self.earliest(name, p)
            if pl is None:
                continue
            k = pl.end if key is None else key(pl)
            if best is None or k < best_key - EPS:
                best, best_key = pl, k
        if best is None:
            raise ScheduleError(self.why_unplaceable(name))
        return best

    def place(self, name: str, pl: Placement) -> None:
        if pl.lane >= 0:
            starts, ends = self.lanes[pl.processor][pl.lane]
            i = bisect.bisect_left(starts, pl.start)
            starts.insert(i, pl.start)
            ends.insert(i, pl.end)
        held = self.groups[pl.processor]
        for g, size in self.tg.tasks[name].resident.items():
            if g not in held:
                held[g] = size
                self.used[pl.processor] += size
        self.placed[name] = pl

    def why_unplaceable(self, name: str) -> str:
        task = self.tg.tasks[name]
        if not task.cost:
            return f"task '{name}': no processor can run it"
        if not any(self.fits(name, p) for p in task.cost):
            need = sum(task.resident.values())
            return (
                f"task '{name}': its resident weights ({need:g} bytes) fit in the free memory "
                f"of none of its processors ({', '.join(task.cost)})"
            )
        for u in self.preds[name]:
            a = self.placed[u]
            if all(math.isinf(self.transfers.edge(u, name, a.processor, q)) for q in task.cost):
                q = next(iter(task.cost))
                return (
                    f"edge {u} -> {name} needs a transfer {a.processor} -> {q}, "
                    "but no link joins them"
                )
        return f"task '{name}': no processor can receive all of its inputs"

    def schedule(self, algorithm: str, status: str = "heuristic") -> Schedule:
        assignment = {t: Slot(pl.processor, pl.start, pl.end) for t, pl in self.placed.items()}
        makespan = max((s.end for s in assignment.values()), default=0.0)
        return Schedule(assignment, makespan, algorithm, status)


def list_schedule(tg: TaskGraph, order: list[str], choose, algorithm: str) -> Schedule:
    """Visit tasks in `order` (a topological order) and place each where `choose(tl, t)`
    says; `choose` returns a Placement from `tl.earliest`/`tl.best`."""
    tl = Timelines(tg)
    for t in order:
        tl.place(t, choose(tl, t))
    return tl.schedule(algorithm)


def retime(tg: TaskGraph, sched: Schedule, algorithm: str | None = None) -> Schedule:
    """Recompute start times for a fixed assignment and per-processor order, each task
    starting as early as its inputs and its processor allow, with exact (unrounded)
    durations. Used after CP-SAT, whose integer ticks round durations up; the result
    is never later than the input schedule."""
    tl = Timelines(tg)
    pos = {t: i for i, t in enumerate(tg.topological_order())}
    order = sorted(tg.tasks, key=lambda t: (sched.assignment[t].start, pos[t]))
    for t in order:
        p = sched.assignment[t].processor
        cost = tg.tasks[t].cost[p]
        ready = tl.ready_time(t, p)
        if cost == 0:
            tl.placed[t] = Placement(p, ready, ready, -1)
            continue
        lane_free = [(ends[-1] if ends else 0.0, k) for k, (_, ends) in enumerate(tl.lanes[p])]
        free, k = min(lane_free)
        start = max(ready, free)
        starts, ends = tl.lanes[p][k]
        starts.append(start)
        ends.append(start + cost)
        tl.placed[t] = Placement(p, start, start + cost, k)
    out = tl.schedule(algorithm or sched.algorithm, sched.status)
    out.lower_bound = sched.lower_bound
    out.solve_time_s = sched.solve_time_s
    return out
