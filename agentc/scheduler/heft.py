"""HEFT: Heterogeneous Earliest Finish Time (Topcuoglu, Hariri & Wu, IEEE TPDS 2002).

The standard fast heuristic for placing a DAG on heterogeneous processors, and the
baseline every placement result in agentc is compared with. Tasks are visited by
decreasing upward rank (mean computation and mean communication cost), and each goes to
the processor where it would finish first, inserted into the earliest idle gap that fits.

Beyond the paper: a processor of capacity c runs up to c tasks at once, a processor absent
from a task's `cost` is never considered, nor one whose memory cannot also hold the task's
resident weight groups, nor one that no link connects to a predecessor's processor.
"""

from __future__ import annotations

import time

from agentc.scheduler.checks import check_graph
from agentc.scheduler.listsched import Transfers, list_schedule
from agentc.scheduler.ranks import by_priority, upward_rank
from agentc.scheduler.taskgraph import Schedule, TaskGraph


def heft(tg: TaskGraph) -> Schedule:
    """Schedule `tg` with insertion-based HEFT; raises ScheduleError if some task has no
    feasible processor once its predecessors are placed."""
    t0 = time.perf_counter()
    check_graph(tg)
    order = by_priority(tg, upward_rank(tg, Transfers(tg)))
    sched = list_schedule(tg, order, lambda tl, t: tl.best(t, tg.tasks[t].cost), "heft")
    sched.solve_time_s = time.perf_counter() - t0
    return sched
