"""Dynamic against static on the same arrivals: agentc's scaled deployment and the three
static baselines of agentc/serving/baselines.py, each run by the same runner (simulated or
emulated), behind the same admission control, reported side by side with their ratios.

`runner(scaling, replicas) -> (rows, costs)` runs one deployment over the arrivals: rows as
the load test writes them, costs {"cost_usd", "replica_seconds", "timeline"}.
"""

from __future__ import annotations

from agentc.serving import baselines
from agentc.serving.load_report import summarize
from agentc.serving.stages import StageGraph

KEYS = ("p50_ms", "p95_ms", "p99_ms", "slo_pct", "refused", "lost", "throughput_rps", "goodput_rps", "cost_usd",
        "goodput_per_usd")


def report(rows: list[dict], costs: dict, graph: StageGraph, span_s: float, mode: str, replicas=None) -> dict:
    r = summarize(rows, graph.sla_s * 1e3, span_s, mode)
    r["cost_usd"] = round(costs["cost_usd"], 6)
    within = r["goodput_rps"] * r["span_s"]
    r["goodput_per_usd"] = round(within / costs["cost_usd"], 3) if costs["cost_usd"] > 0 else None
    r["replica_seconds"] = costs["replica_seconds"]
    if replicas is not None:
        r["replicas"] = dict(replicas)
    return r


def compare(graph: StageGraph, arrivals, runner, utilisation: float, mode: str, scaling: str = "joint",
            initial: dict[str, int] | None = None, progress=None, search_runner=None,
            factors: dict[str, float] | None = None) -> dict:
    """The four deployments' reports and the ratios. `search_runner`: runs the iso-SLO
    search's candidates (default `runner`; an emulated comparison searches by simulation and
    runs only the one found). `factors`: the batching stages' (baselines.static_peak), so
    the static deployments are sized for replicas that batch as the dynamic one's do."""
    span = arrivals[-1].at if arrivals else 0.0
    say = progress or (lambda msg: None)
    out = {"mode": mode, "sla_ms": graph.sla_s * 1e3, "requests": len(arrivals),
           "peak_10s_rps": baselines.peak_rate(arrivals)}

    def run(name, scaling_, replicas, using=None):
        say(f"{name}: {scaling_} {replicas or ''}")
        rows, costs = (using or runner)(scaling_, replicas)
        return report(rows, costs, graph, span, mode, replicas if scaling_ == "static" else None), rows, costs

    start = initial or dict.fromkeys(graph.stages, 1)
    out["dynamic"], rows, costs = run("dynamic", scaling, start)
    out["dynamic"]["timeline"] = costs.get("timeline")
    peak = baselines.static_peak(graph, arrivals, utilisation, factors)
    out["static_peak"], _, _ = run("static-peak", "static", peak)
    budget = costs["cost_usd"] / max(span, 1e-9) * 3600
    out["static_iso_cost"], _, _ = run("static-iso-cost", "static", baselines.static_iso_cost(graph, arrivals, budget, factors))
    out["static_iso_cost"]["budget_per_hour"] = round(budget, 4)
    searcher = search_runner or runner

    def evaluate(replicas):
        rows_, costs_ = searcher("static", replicas)
        return report(rows_, costs_, graph, span, mode, replicas)

    found, found_report, runs = baselines.static_iso_slo(graph, peak, out["dynamic"]["slo_pct"], evaluate)
    if search_runner is not None:  # run the one found with the comparison's own runner
        found_report, _, _ = run("static-iso-SLO", "static", found)
    found_report["searched"] = runs
    out["static_iso_slo"] = found_report
    out["ratios"] = baselines.ratios(out["dynamic"], out["static_peak"], out["static_iso_cost"], out["static_iso_slo"])
    return out, rows


def key_line(result: dict) -> str:
    r = result["ratios"]
    return (f"p95_ratio={r['p95_ratio']} cost_ratio={r['cost_ratio']} cost_ratio_iso_slo={r['cost_ratio_iso_slo']} "
            f"slo_pct={result['dynamic']['slo_pct']} lost={result['dynamic']['lost']} mode={result['mode']}")


def table(result: dict) -> str:
    names = ("dynamic", "static_peak", "static_iso_cost", "static_iso_slo")
    rows = [f"{'':<16}" + "".join(f"{n:>17}" for n in names)]
    for k in KEYS:
        rows.append(f"{k:<16}" + "".join(f"{_fmt(result[n].get(k)):>17}" for n in names))
    rows.append(f"{'dynamic/static':<16}" + f"{'':>17}" + "".join(
        f"{'P95 ' + _fmt(result['ratios'][n]['p95_ms']) + ' $ ' + _fmt(result['ratios'][n]['cost_usd']):>17}"
        for n in names[1:]))
    return "\n".join(rows)


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)
