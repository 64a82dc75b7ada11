"""The static deployments agentc's dynamic one is measured against, sized from the same
trace, and the ratios of the comparison.

- static-peak: per stage, the replicas that keep up with the trace's peak 10-s rate at the
  policy's target utilisation (what a team deploys without autoscaling);
- static-iso-cost: the dynamic run's average spend per hour, split across stages in
  proportion to each stage's load (arrival rate x service time x visits): every stage gets
  one replica, then replicas go one at a time to the stage with the most load per replica
  while the budget allows;
- static-iso-SLO: the cheapest static deployment that reaches the dynamic run's SLO
  attainment, searched per stage (most expensive stage first, the fewest replicas that still
  reach it, the others held), starting from static-peak grown until it reaches it.

`evaluate(replicas) -> report` runs one static deployment (the simulator, or an emulated
service) and returns its load-test report, with `cost_usd` and `slo_pct`.
"""

from __future__ import annotations

import math

from agentc.serving.arrivals import Arrival
from agentc.serving.stages import StageGraph

PEAK_WINDOW_S = 10.0


def peak_rate(arrivals: list[Arrival], window_s: float = PEAK_WINDOW_S) -> float:
    """The most requests in any `window_s` window, per second."""
    best, j = 0, 0
    for i, a in enumerate(arrivals):
        while arrivals[j].at <= a.at - window_s:
            j += 1
        best = max(best, i - j + 1)
    return best / window_s


def mean_service(graph: StageGraph, arrivals: list[Arrival], factors: dict[str, float] | None = None
                 ) -> dict[str, float]:
    """Replica-seconds one request costs each stage, averaged over the arrivals' token counts
    (times the stage's batching factor, where it batches)."""
    out = {s: 0.0 for s in graph.stages}
    for a in arrivals:
        for c in graph.calls:
            out[c.stage] += c.service(a.generated_tokens or None)
    return {s: v / max(1, len(arrivals)) * (factors or {}).get(s, 1.0) for s, v in out.items()}


def static_peak(graph: StageGraph, arrivals: list[Arrival], utilisation: float,
                factors: dict[str, float] | None = None) -> dict[str, int]:
    """`factors`: per stage whose replicas batch calls, the replica-seconds a call costs at
    its batch over the call alone (agentc/serving/batching.py `stage_capacity`)."""
    rate, service = peak_rate(arrivals), mean_service(graph, arrivals, factors)
    return {s: max(1, math.ceil(rate * service[s] / utilisation - 1e-9)) for s in graph.stages}


def static_iso_cost(graph: StageGraph, arrivals: list[Arrival], budget_per_hour: float,
                    factors: dict[str, float] | None = None) -> dict[str, int]:
    span = max(arrivals[-1].at, 1e-9) if arrivals else 1.0
    service = mean_service(graph, arrivals, factors)
    load = {s: len(arrivals) / span * service[s] for s in graph.stages}
    price = {s: graph.stages[s].price_per_hour for s in graph.stages}
    replicas = dict.fromkeys(graph.stages, 1)
    spent = sum(price.values())
    while True:
        fits = [s for s in graph.stages if spent + price[s] <= budget_per_hour + 1e-12]
        if not fits:
            return replicas
        s = max(fits, key=lambda s: load[s] / replicas[s])
        replicas[s] += 1
        spent += price[s]


def static_iso_slo(graph: StageGraph, start: dict[str, int], target_pct: float, evaluate,
                   max_replicas: int = 256) -> tuple[dict[str, int], dict, int]:
    """(replicas, their report, deployments evaluated)."""
    runs = 0

    def ok(replicas: dict[str, int]) -> tuple[bool, dict]:
        nonlocal runs
        runs += 1
        report = evaluate(replicas)
        return report["slo_pct"] >= target_pct - 1e-9, report

    best = dict(start)
    reached, report = ok(best)
    while not reached and max(best.values()) < max_replicas:
        best = {s: min(max_replicas, math.ceil(n * 1.5)) for s, n in best.items()}
        reached, report = ok(best)
    if not reached:
        return best, report, runs
    for s in sorted(graph.stages, key=lambda s: -graph.stages[s].price_per_hour * best[s]):
        lo, hi = 1, best[s]  # hi reaches the target; find the fewest that do
        while lo < hi:
            mid = (lo + hi) // 2
            good, r = ok({**best, s: mid})
            if good:
                hi, report = mid, r
            else:
                lo = mid + 1
        if hi != best[s]:
            best[s] = hi
    reached, report = ok(best)
    return best, report, runs


def static_cost_per_hour(graph: StageGraph, replicas: dict[str, int]) -> float:
    return sum(graph.stages[s].price_per_hour * n for s, n in replicas.items())


def ratios(dynamic: dict, peak: dict, iso_cost: dict, iso_slo: dict) -> dict:
    """dynamic / static for each metric (None where a side is missing or zero), and the
    headline numbers of the key=value line."""
    def r(a, b):
        if a is None or b in (None, 0) or not math.isfinite(b) or not math.isfinite(a):
            return None
        return round(a / b, 4)

    out = {}
    for name, other in (("static_peak", peak), ("static_iso_cost", iso_cost), ("static_iso_slo", iso_slo)):
        out[name] = {k: r(dynamic.get(k), other.get(k)) for k in
                     ("p50_ms", "p95_ms", "p99_ms", "slo_pct", "throughput_rps", "goodput_rps", "cost_usd",
                      "goodput_per_usd")}
    out["p95_ratio"] = out["static_iso_cost"]["p95_ms"]
    out["cost_ratio"] = out["static_peak"]["cost_usd"]
    out["cost_ratio_iso_slo"] = out["static_iso_slo"]["cost_usd"]
    out["goodput_per_usd_ratio"] = out["static_iso_cost"]["goodput_per_usd"]
    return out



def unloaded_p50(graph: StageGraph, arrivals: list[Arrival], sample: int = 200) -> float:
    """The median latency of the arrivals' requests, each alone on one replica per stage
    (calls to one stage queue there, as a fan-out's branches do), seconds: the benchmark's
    SLA is twice it. Up to `sample` requests, evenly spread over the arrivals."""
    import statistics

    from agentc.serving.autoscale import ScalePolicy
    from agentc.serving.simulate import Deployment, simulate

    if not arrivals:
        arrivals = [Arrival(0.0)]
    picked = arrivals[::max(1, len(arrivals) // sample)][:sample]
    gap = 10 * graph.latency_s() + 1.0
    alone = [Arrival(k * gap, a.context_tokens, a.generated_tokens) for k, a in enumerate(picked)]
    rows, _ = simulate(graph, alone, Deployment("static", dict.fromkeys(graph.stages, 1),
                                                ScalePolicy(sla_s=1.0, service_s=1.0), margin=float("inf")))
    return statistics.median(r["latency_ms"] for r in rows) / 1e3
