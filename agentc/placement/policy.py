"""The placement stage: a lowered agent on a cluster -> a Placement, with the SLA policy
around the solver: an SLA no placement meets is explained, an error with `strict_sla`,
otherwise a warning and the fastest placement. (agentc/placement/place.py is the solver side.)"""

from __future__ import annotations

import sys
from pathlib import Path

from agentc.cost.estimate import estimate, listed_cluster
from agentc.frontend.graph import AgentError
from agentc.ir.lower import Lowered
from agentc.placement.cluster import Cluster
from agentc.placement.place import Placement, explain, place
from agentc.scheduler.explain import SlaError, explain_sla
from agentc.scheduler.taskgraph import ScheduleError


def log(opts, msg: str) -> None:
    if not opts.quiet:
        print(f"[agentc] {msg}", file=sys.stderr, flush=True)


def place_lowered(low: Lowered, cluster: Cluster, opts) -> Placement:
    """Place with the requested objective. An unreachable SLA is explained; it is an
    error with `strict_sla`, otherwise a warning and the fastest placement. The placement's
    `cluster` is what was listed to the solver (`listed_cluster`)."""
    forced = None
    if opts.assign is not None:  # every compute operator pinned: the same path, no choice
        forced = {op.name: opts.assign(op.name) for op in low.ops if op.kind == "call"}
        unknown = sorted(set(forced.values()) - set(cluster.devices))
        if unknown:
            raise AgentError(f"assign: device '{unknown[0]}' is not in the cluster ({cluster.describe()})")
    else:
        cluster = listed_cluster(low, cluster, opts.slowdown, opts.arrival_rate)
    call_times, weights = estimate(low, cluster, opts.slowdown)
    sla = opts.sla_ms if opts.sla_ms is not None else low.graph.sla_ms
    where = f"{low.graph.loc}: agent '{low.graph.name}'"
    try:
        placement = place(low.ops, cluster, call_times, weights, sla, opts.objective,
                          opts.time_limit_s, opts.arrival_rate, forced)
    except SlaError as e:  # tco: no placement meets the SLA; fall back to the fastest
        if opts.strict_sla:
            raise AgentError(f"{where}: {explain(e.report)}") from None
        print(f"agentc: warning: {where}: {explain(e.report)}", file=sys.stderr)
        placement = place(low.ops, cluster, call_times, weights, sla, "latency", opts.time_limit_s, forced=forced)
    except ScheduleError as e:
        raise AgentError(f"{where}: cannot place on {cluster.describe()}: {e}") from None
    sources = ", ".join(f"{g.name}: {Path(g.spec.profile).name if g.spec.profile else 'catalog defaults'}"
                        for g in cluster.groups.values() if cluster.listed(g))
    log(opts, f"cost model: {sources}")
    log(opts, f"placed {len(low.ops)} operators on {cluster.describe()} + host "
               f"({placement.status}, {placement.solve_time_s:.2f}s)")
    if not placement.meets_sla and opts.objective != "tco":
        report = explain_sla(placement.taskgraph, sla / 1e3, schedule=placement.schedule)
        if opts.strict_sla:
            raise AgentError(f"{where}: {explain(report)}")
        print(f"agentc: warning: {where}: {explain(report)}", file=sys.stderr)
    placement.cluster = cluster
    return placement
