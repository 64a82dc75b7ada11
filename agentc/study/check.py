"""The queueing model's fleets run through the event simulator (agentc/serving/simulate.py):
the chosen replicas per stage, static, one call per replica (`slots=1`), Poisson arrivals at
the case's rate, every generation at its full max_tokens. The sizing's P95 (an M/M/c
approximation with waits added along the path) misses what the simulator sees: service
times are fixed, a fan-out's branches arrive together, waits at successive stages correlate.
`refine` adds replicas to the busiest stage until the simulated P95 meets the SLA: the fleets
the study reports are the refined ones.
"""

from __future__ import annotations

from dataclasses import replace

from agentc.serving.arrivals import Arrival, gamma
from agentc.serving.autoscale import ScalePolicy
from agentc.serving.load_report import summarize
from agentc.serving.simulate import STATIC, Deployment, simulate
from agentc.serving.stages import Call, Stage, StageGraph
from agentc.study.profile import AgentProfile
from agentc.study.sizing import HOP_S, MAX_PER_TYPE, Sized, latency, parts

FULL = 10**9  # generated tokens: every call runs to its max_tokens (capped there)


def stage_graph(profile: AgentProfile, sized: Sized) -> StageGraph:
    """The sized placement as the serving stages it stands for (an LLM call split across two
    types is two calls, its decode after its prefill)."""
    where = dict(sized.assignment)
    calls, stages, last = [], {}, {}
    by_name = {n.name: n for n in profile.nodes}

    def upstream(name: str) -> set[str]:
        out = set()
        for p in by_name[name].preds:
            out |= {last[p]} if by_name[p].is_call else upstream(p)
        return out

    for n in profile.calls:
        after = tuple(sorted(upstream(n.name)))
        split = parts(n, where[n.name])
        for i, (st, service) in enumerate(split):
            t = st.rsplit("@", 1)[1]
            stages.setdefault(st, Stage(st, (st,), t, 0.0, ()))  # the study prices fleets, not stages
            node = n.name if len(split) == 1 else f"{n.name}/{('prefill', 'decode')[i]}"
            stages[st] = replace(stages[st], nodes=stages[st].nodes + (node,))
            call = replace(n.on[t], node=node, stage=st, after=after) if len(split) == 1 else \
                Call(node, st, after, service)
            calls.append(call)
            after, last[n.name] = (node,), node
    g = StageGraph(profile.agent, stages, tuple(calls))
    # Host work the simulator adds to every request: the longest path's share off the stages.
    calls_only = g.latency_s() + HOP_S * len(_longest_call_chain(g))
    host = max(0.0, latency(profile, where, {})[0] - calls_only)
    return replace(g, host_s=host)


def _longest_call_chain(g: StageGraph) -> list[str]:
    end: dict[str, tuple[float, list[str]]] = {}
    for c in g.calls:
        start, via = max(((end[a][0], end[a][1]) for a in c.after), default=(0.0, []))
        end[c.node] = (start + c.service_s, via + [c.node])
    return max(end.values(), key=lambda e: e[0])[1] if end else []


def simulated(profile: AgentProfile, sized: Sized, rate: float, sla_s: float,
              duration_s: float = 600.0, max_requests: int = 20000, seed: int = 0) -> dict:
    """P50/P95/SLO attainment of the sized fleet under Poisson arrivals at `rate`."""
    g = replace(stage_graph(profile, sized), sla_s=sla_s)
    span = min(duration_s, max_requests / rate)
    arrivals = [Arrival(a.at, 0, FULL) for a in gamma(rate, 1.0, span, seed)]
    policy = ScalePolicy(sla_s=sla_s, service_s=g.latency_s(), min_replicas=1, max_replicas=10**6)
    deployment = Deployment(STATIC, dict(sized.replicas), policy, margin=1e9, hop_s=HOP_S, slots=1)
    rows, _ = simulate(g, arrivals, deployment)
    r = summarize(rows, sla_s * 1e3, span, "simulate")
    return {"requests": r["sent"], "p50_ms": r["p50_ms"], "p95_ms": r["p95_ms"], "slo_pct": r["slo_pct"],
            "lost": r["lost"], "refused": r["refused"]}


REFINE_REQUESTS = 4000  # per simulation: P95 from 200 requests above it
MAX_STEPS = 40


def refine(profile: AgentProfile, sized: Sized, rate: float, sla_s: float) -> tuple[Sized, dict]:
    """`sized` grown until the simulated P95 meets the SLA (then its P95 is the simulator's);
    not feasible when a type would pass MAX_PER_TYPE or MAX_STEPS did not get there."""
    s = sized
    for _ in range(MAX_STEPS):
        sim = simulated(profile, s, rate, sla_s, max_requests=REFINE_REQUESTS)
        if sim["p95_ms"] <= sla_s * 1e3:
            return replace(s, p95_s=sim["p95_ms"] / 1e3), sim
        s = s.grown(s.busiest(rate, profile))
        if max(s.counts.values()) > MAX_PER_TYPE:
            break
    return replace(s, feasible=False), sim
