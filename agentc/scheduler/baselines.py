"""Placements a user would get without agentc, to measure agentc against.

- every single processor on its own (the "just run it on the GPU" answer);
- ONNX-Runtime-style priority greedy: each task goes to the first processor in a fixed
  priority list that supports it (ORT's execution-provider order), whatever that costs;
- random feasible placements (seeded), a floor any optimiser must beat.

All are list-scheduled with the same insertion rule and feasibility checks as HEFT (see
`listsched`), so differences come from placement alone. `solve` also uses the best of
them to warm-start CP-SAT and as the answer it must never do worse than.
"""

from __future__ import annotations

import random
import time

from agentc.scheduler.listsched import Timelines, Transfers, list_schedule
from agentc.scheduler.ranks import by_priority, upward_rank
from agentc.scheduler.taskgraph import Schedule, ScheduleError, TaskGraph


def _timed(fn):
    def run(*args, **kwargs):
        t0 = time.perf_counter()
        sched = fn(*args, **kwargs)
        if sched is not None:
            sched.solve_time_s = time.perf_counter() - t0
        return sched

    run.__doc__ = fn.__doc__
    run.__name__ = fn.__name__
    return run


@_timed
def single_processor(tg: TaskGraph, processor: str) -> Schedule | None:
    """Everything on `processor`, in upward-rank order; None if some task cannot run there
    or its weights do not fit."""
    if any(processor not in t.cost for t in tg.tasks.values()):
        return None
    order = by_priority(tg, upward_rank(tg))
    tl = Timelines(tg)
    for t in order:
        pl = tl.earliest(t, processor)
        if pl is None:
            return None
        tl.place(t, pl)
    return tl.schedule(f"single:{processor}")


def single_processor_all(tg: TaskGraph) -> list[Schedule]:
    out = [single_processor(tg, p) for p in tg.processors]
    return [s for s in out if s is not None]


@_timed
def priority_greedy(tg: TaskGraph, priority: list[str] | None = None) -> Schedule:
    """Each task on the first processor in `priority` (default: declaration order) that
    supports it and can hold its weights and receive its inputs."""
    prefs = list(priority) if priority is not None else list(tg.processors)
    for p in prefs:
        if p not in tg.processors:
            raise ScheduleError(f"priority list: unknown processor '{p}'")
    order = by_priority(tg, upward_rank(tg))

    def choose(tl, t):
        for p in prefs:
            pl = tl.earliest(t, p)
            if pl is not None:
                return pl
        raise ScheduleError(tl.why_unplaceable(t))

    return list_schedule(tg, order, choose, "greedy")


def fastest_first(tg: TaskGraph) -> list[str]:
    """Processors by the total time they would take on the tasks they support, fastest
    first, each penalised by the tasks it cannot run (a GPU-before-CPU priority list)."""
    worst = {t: max(task.cost.values()) for t, task in tg.tasks.items()}

    def total(p):
        return sum(task.cost.get(p, 10 * worst[t]) for t, task in tg.tasks.items())

    return sorted(tg.processors, key=total)


@_timed
def random_feasible(tg: TaskGraph, seed: int = 0) -> Schedule:
    """Tasks in a random topological order, each on a random processor that can take it."""
    rng = random.Random(seed)
    tl = Timelines(tg, Transfers(tg))
    waiting = {t: len(tl.preds[t]) for t in tg.tasks}
    succs = tg.successors()
    ready = sorted(t for t, k in waiting.items() if k == 0)
    while ready:
        t = ready.pop(rng.randrange(len(ready)))
        options = []
        for p in tg.tasks[t].cost:
            pl = tl.earliest(t, p)
            if pl is not None:
                options.append(pl)
        if not options:
            raise ScheduleError(tl.why_unplaceable(t))
        tl.place(t, rng.choice(options))
        for s in succs[t]:
            waiting[s] -= 1
            if waiting[s] == 0:
                ready.append(s)
    return tl.schedule(f"random:{seed}")


def all_baselines(tg: TaskGraph, seeds: int = 3) -> list[Schedule]:
    """Every baseline that applies to `tg`; a baseline that cannot place the graph (for
    instance greedy running out of memory) is left out."""
    out = single_processor_all(tg)
    for prefs, name in ((None, "greedy"), (fastest_first(tg), "greedy:fastest-first")):
        try:
            sched = priority_greedy(tg, prefs)
        except ScheduleError:
            continue
        sched.algorithm = name
        out.append(sched)
    for seed in range(seeds):
        try:
            out.append(random_feasible(tg, seed))
        except ScheduleError:
            continue
    return out
