"""CPOP: Critical Path On a Processor (Topcuoglu, Hariri & Wu, IEEE TPDS 2002).

HEFT's companion in the same paper: the tasks on the critical path (upward + downward rank
equal to the entry's) all go to the one processor that runs that path fastest, so the
path pays no transfers; the other tasks go where they finish first. Included as a second
published reference point (makespan 86 on the paper's example) and as one more candidate
for warm-starting CP-SAT.

Beyond the paper: if the critical-path processor cannot take a path task (memory, or no
link from a predecessor), that task falls back to earliest finish like the others; the
usual capacity, memory and link rules apply (see `listsched`).
"""

from __future__ import annotations

import time

from agentc.scheduler.checks import check_graph
from agentc.scheduler.listsched import Transfers, list_schedule
from agentc.scheduler.ranks import downward_rank, ready_list_order, upward_rank
from agentc.scheduler.taskgraph import Schedule, TaskGraph


def critical_path(tg: TaskGraph, priority: dict[str, float]) -> list[str]:
    """Follow the tasks whose priority equals the largest entry priority, entry to exit."""
    succs, preds = tg.successors(), tg.predecessors()
    entries = [t for t in tg.tasks if not preds[t]]
    t = max(entries, key=lambda e: round(priority[e], 9))
    length = round(priority[t], 9)
    path = [t]
    while succs[t]:
        on_path = [s for s in succs[t] if round(priority[s], 9) == length]
        if not on_path:
            break
        t = on_path[0]
        path.append(t)
    return path


def cpop(tg: TaskGraph) -> Schedule:
    t0 = time.perf_counter()
    check_graph(tg)
    tr = Transfers(tg)
    up, down = upward_rank(tg, tr), downward_rank(tg, tr)
    priority = {t: up[t] + down[t] for t in tg.tasks}
    path = critical_path(tg, priority)
    able = [p for p in tg.processors if all(p in tg.tasks[t].cost for t in path)]
    cp_proc = min(able, key=lambda p: sum(tg.tasks[t].cost[p] for t in path), default=None)
    on_path = set(path)

    order = ready_list_order(tg, priority)

    def choose(tl, t):
        if t in on_path and cp_proc is not None:
            pl = tl.earliest(t, cp_proc)
            if pl is not None:
                return pl
        return tl.best(t, tg.tasks[t].cost)

    sched = list_schedule(tg, order, choose, "cpop")
    sched.solve_time_s = time.perf_counter() - t0
    return sched
