"""Task priorities shared by the list schedulers (Topcuoglu, Hariri & Wu 2002).

The upward rank of a task is the length of the longest path from it to an exit, counting
each task at its mean cost over the processors that can run it and each edge at its mean
transfer time over distinct processor pairs; the downward rank is the same towards the
entry. HEFT orders tasks by upward rank, CPOP by the sum of both.

Ranks are compared after rounding to 1e-9 so that ties in exact arithmetic (two paths of
the same mean length, as for n3 and n4 in the HEFT paper's example) stay ties in floating
point and are broken by the graph's own task order, deterministically.
"""

from __future__ import annotations

from statistics import fmean

import networkx as nx

from agentc.scheduler.listsched import Transfers
from agentc.scheduler.taskgraph import TaskGraph


def mean_cost(tg: TaskGraph, name: str) -> float:
    return fmean(tg.tasks[name].cost.values())


def topo_positions(tg: TaskGraph) -> dict[str, int]:
    """Position of each task in the topological order that keeps the graph's own task
    order wherever the edges allow (used to break ties)."""
    index = {t: i for i, t in enumerate(tg.tasks)}
    order = nx.lexicographical_topological_sort(tg.graph(), key=lambda t: index[t])
    return {t: i for i, t in enumerate(order)}


def upward_rank(tg: TaskGraph, transfers: Transfers | None = None) -> dict[str, float]:
    tr = transfers or Transfers(tg)
    succs = tg.successors()
    pos = topo_positions(tg)
    rank: dict[str, float] = {}
    for t in sorted(tg.tasks, key=lambda t: -pos[t]):
        tail = max((tr.mean(t, s) + rank[s] for s in succs[t]), default=0.0)
        rank[t] = mean_cost(tg, t) + tail
    return rank


def downward_rank(tg: TaskGraph, transfers: Transfers | None = None) -> dict[str, float]:
    tr = transfers or Transfers(tg)
    preds = tg.predecessors()
    pos = topo_positions(tg)
    rank: dict[str, float] = {}
    for t in sorted(tg.tasks, key=lambda t: pos[t]):
        rank[t] = max((rank[u] + mean_cost(tg, u) + tr.mean(u, t) for u in preds[t]), default=0.0)
    return rank


def by_priority(tg: TaskGraph, priority: dict[str, float]) -> list[str]:
    """Tasks by decreasing priority, ties in topological order. With non-negative costs a
    predecessor's upward rank is never below its successor's, so this order is
    topological."""
    pos = topo_positions(tg)
    return sorted(tg.tasks, key=lambda t: (-round(priority[t], 9), pos[t]))


def ready_list_order(tg: TaskGraph, priority: dict[str, float]) -> list[str]:
    """Tasks in the order a ready-list scheduler takes them: among tasks whose
    predecessors are all taken, the highest priority first (ties by topological
    position). PEFT and CPOP both order tasks this way; a cycle leaves tasks out."""
    pos = topo_positions(tg)
    succs = tg.successors()
    waiting = {t: len(ps) for t, ps in tg.predecessors().items()}
    ready = [t for t, k in waiting.items() if k == 0]
    order = []
    while ready:
        t = min(ready, key=lambda t: (-round(priority[t], 9), pos[t]))
        ready.remove(t)
        order.append(t)
        for s in succs[t]:
            waiting[s] -= 1
            if waiting[s] == 0:
                ready.append(s)
    return order
