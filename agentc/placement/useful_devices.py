"""How many devices of each class of interchangeable devices placement should list.

A cluster of 10,000 identical GPUs offers one request no more than a handful: a request
runs at most as many operators at once as its graph is wide, needs more devices than that
only where its weights do not fit on fewer, and (placing for an arrival rate) as many as
keep up with the work. Listing every device would only multiply the solver's variables
(placing the fan-out agent on 100 devices took 9 s and found a worse schedule than on 10;
10,000 devices ran out of memory). So each class (agentc.placement.cluster: same type, price and
links) lists

    min(count, width + ceil(weights / memory) + ceil(arrival rate x busy time))

where width bounds how many of the operators it can run are ever independent of each
other (a chain cover of them: a set of chains covering every operator is at least as
many as any set of mutually independent ones), weights are those of the operators it
can run, and busy time their total run time on one such device.
"""

from __future__ import annotations

import math

from agentc.ir.plan import PlanOp
from agentc.placement.cluster import Cluster, DeviceGroup


def chain_cover(ops: list[PlanOp], members: set[str]) -> int:
    """The number of chains a greedy cover of the operators in `members` takes (ops are in
    dependency order): an upper bound of how many of them can run at once."""
    producer = {v: op.name for op in ops for v in op.outputs}
    bit = {op.name: 1 << i for i, op in enumerate(ops)}
    ancestors: dict[str, int] = {}
    tails: list[str] = []  # the last operator of each chain
    for op in ops:
        deps = [producer[v] for v in list(op.inputs) + [g for g, _ in op.guards] if v in producer]
        deps += [a for a in op.attrs.get("after", []) if a in bit]
        anc = 0
        for d in deps:
            anc |= ancestors[d] | bit[d]
        ancestors[op.name] = anc
        if op.name not in members:
            continue
        k = next((i for i, t in enumerate(tails) if anc & bit[t]), None)
        if k is None:
            tails.append(op.name)
        else:
            tails[k] = op.name
    return len(tails)


def useful_counts(ops: list[PlanOp], reps: Cluster, call_times: dict[str, dict[str, float]],
                  weights: dict[str, dict[str, int]], arrival_rate: float | None):
    """per_class(groups) for Cluster.trimmed, from one listed device per class (`reps`, the
    cluster trimmed to one of each, and the cost model's times on them)."""
    rep_of = {g.name: g.instance(0) for g in reps.groups.values()}

    def per_class(groups: list[DeviceGroup]) -> int:
        rep = rep_of[groups[0].name]
        calls = [op for op in ops if op.kind == "call" and rep in call_times.get(op.callee, {})]
        if not calls:
            return 1
        resident: dict[str, int] = {}
        for op in calls:
            resident.update(weights.get(op.callee, {}))
        memory = groups[0].spec.memory_bytes
        need = math.ceil(sum(resident.values()) / memory) if memory and math.isfinite(memory) else 1
        busy = sum(call_times[op.callee][rep] for op in calls)
        rate = math.ceil(arrival_rate * busy) if arrival_rate else 0
        return max(1, chain_cover(ops, {op.name for op in calls}) + need + rate)

    return per_class
