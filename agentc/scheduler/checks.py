"""Input checks every solver runs before it starts, each failing with one line.

`TaskGraph.validate` covers names, cycles and link parameters; this adds what only shows
up once costs, memories and links are read together: negative or non-finite costs, a
capacity below one, a task whose weights fit none of its processors even when empty, and
an edge whose data cannot reach any processor the consumer may use. Catching those here
gives the user the cause rather than an "infeasible" from the solver.
"""

from __future__ import annotations

import math

from agentc.scheduler.listsched import Transfers
from agentc.scheduler.taskgraph import ScheduleError, TaskGraph


def check_graph(tg: TaskGraph) -> None:
    if not tg.tasks:
        raise ScheduleError("no tasks: nothing to schedule")
    if not tg.processors:
        raise ScheduleError("no processors: nothing to schedule on")
    tg.validate()
    for p, proc in tg.processors.items():
        if proc.capacity < 1:
            raise ScheduleError(f"processor {p}: capacity must be >= 1, got {proc.capacity}")
        if proc.memory_bytes < 0:
            raise ScheduleError(
                f"processor {p}: memory_bytes must be >= 0, got {proc.memory_bytes}"
            )
    for t in tg.tasks.values():
        for p, c in t.cost.items():
            if not (isinstance(c, (int, float)) and math.isfinite(c) and c >= 0):
                raise ScheduleError(
                    f"task '{t.name}': cost on {p} must be a finite number >= 0, got {c}"
                )
        need = sum(t.resident.values())
        if t.resident and not any(need <= tg.processors[p].memory_bytes for p in t.cost):
            raise ScheduleError(
                f"task '{t.name}': its resident weights ({need:g} bytes) fit on none of its "
                f"processors ({', '.join(t.cost)})"
            )
    for (u, v), volume in tg.edges.items():
        if not (math.isfinite(volume) and volume >= 0):
            raise ScheduleError(
                f"edge {u} -> {v}: data volume must be a finite number >= 0, got {volume}"
            )
    tr = Transfers(tg)
    for u, v in tg.edges:
        pairs = [(p, q) for p in tg.tasks[u].cost for q in tg.tasks[v].cost]
        if all(math.isinf(tr.edge(u, v, p, q)) for p, q in pairs):
            p, q = pairs[0]
            tg.comm_time(u, v, p, q)  # raises the standard one-line message
