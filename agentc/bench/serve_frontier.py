"""`agentc bench serve-frontier`: what the serving goals need of the replica start time and
of foresight, on the code trace's hour.

The goals of `agentc bench serve`: SLO attainment at least 99% at no more than 0.6 of
static-peak's cost. The RAG agent is placed as there, with the same SLA (2x the unloaded P50)
and the same simulator (agentc/serving/simulate.py). The runs:

- static-peak, the anchor: each dynamic run's cost is a ratio to it;
- agentc's policy (agentc/serving/autoscale.py) over a grid of its knobs: how long it holds
  a burst's rate (`hold_s`), the target utilisation, and (where the controller ticks faster
  than once a second) the window it rates arrivals over. This is done at the replica start
  measured here (a fresh process opening the real RAG build) and at shorter starts that no
  replica here reaches. Those shorter starts are labelled hypothetical; the controller
  ticks at most as slowly as the start;
- the clairvoyant policy (agentc/serving/clairvoyant.py) at the measured start: the same
  sizing rule, seeing the arrivals to come.

Per start time, the frontier is the cheapest run that reaches 99%, and the best SLO attainment
at 0.6 of static-peak's cost or less. Writes frontier.png: cost ratio against SLO
attainment, one curve per start, the clairvoyant beside them, and the goal's corner.
"""

from __future__ import annotations

import itertools
import sys
from multiprocessing import Pool
from pathlib import Path

from agentc.serving import baselines
from agentc.serving.arrivals import read_trace, reshape
from agentc.serving.autoscale import ScalePolicy
from agentc.serving.clairvoyant import Clairvoyant
from agentc.serving.compare import report
from agentc.serving.simulate import Deployment, simulate
from agentc.serving.simulated_run import with_sla
from agentc.serving.stages import from_placement

GOAL_SLO, GOAL_COST = 99.0, 0.6
HYPOTHETICAL_STARTS = (0.3, 0.1)
HOLDS, UTILS, WINDOWS = (0.0, 30.0, 120.0, 600.0), (0.7, 0.5, 0.35), (1.0, 0.5)
CLAIRVOYANT_UTILS = (0.7, 0.5, 0.35, 0.25)


def _say(msg: str) -> None:
    print(f"[bench serve-frontier] {msg}", file=sys.stderr, flush=True)


def _one(job):
    """One simulated hour: (label, knobs, report fields)."""
    graph, arrivals, label, knobs, deployment = job
    rows, costs = simulate(graph, arrivals, deployment)
    r = report(rows, costs, graph, arrivals[-1].at, "simulate")
    return label, knobs, {k: r[k] for k in ("slo_pct", "p95_ms", "cost_usd", "refused")}


def _jobs(graph, arrivals, start_s: float, quick: bool) -> list:
    first = dict.fromkeys(graph.stages, 1)
    base = ScalePolicy(sla_s=graph.sla_s, service_s=graph.latency_s(), start_s=start_s, min_replicas=0,
                       max_replicas=64)
    jobs = [(graph, arrivals, "static-peak", {}, Deployment(
        "static", baselines.static_peak(graph, arrivals, base.target_utilisation), base))]
    holds, utils = ((0.0, 600.0), (0.7, 0.35)) if quick else (HOLDS, UTILS)
    for start in (start_s, *HYPOTHETICAL_STARTS):
        tick = 1.0 if start == start_s else min(1.0, start)  # the controller's tick; faster for a faster start
        label = _label("agentc", start, start_s)
        # A window shorter than the tick is the tick (autoscale.py): it is a knob only for faster ticks.
        windows = (1.0,) if tick >= 1.0 else WINDOWS
        for hold, util, window in itertools.product(holds, utils, windows):
            knobs = {"start_s": start, "hold_s": hold, "target_utilisation": util, "rate_window_s": window}
            policy = ScalePolicy(**{**base.kwargs(), **knobs})
            jobs.append((graph, arrivals, label, knobs, Deployment("joint", first, policy, tick_s=tick)))
    times = tuple(a.at for a in arrivals)
    for util in (CLAIRVOYANT_UTILS[::3] if quick else CLAIRVOYANT_UTILS):
        policy = Clairvoyant(**{**base.kwargs(), "target_utilisation": util}, arrivals=times)
        jobs.append((graph, arrivals, _label("clairvoyant", start_s, start_s), {"start_s": start_s,
                     "target_utilisation": util}, Deployment("joint", first, policy)))
    return jobs


def _label(policy: str, start: float, measured: float) -> str:
    return f"{policy}, {'measured start' if start == measured else 'hypothetical start'} {start:.2f} s"


def _key(label: str) -> str:
    """A label as a summary key, stable across runs: the measured start's value left out."""
    policy, rest = label.split(", ")
    if rest.startswith("measured"):
        return f"{policy}_measured_start"
    return f"{policy}_start_{rest.split()[-2].replace('.', 'p')}s"


def frontier(runs: list[dict], anchor_cost: float) -> dict:
    """Per label: the cheapest run at >= 99% SLO and the best SLO at <= 0.6 of the anchor's cost."""
    out = {}
    for label in dict.fromkeys(r["label"] for r in runs):
        mine = [r for r in runs if r["label"] == label]
        good = [r for r in mine if r["slo_pct"] >= GOAL_SLO]
        cheap = [r for r in mine if r["cost_usd"] <= GOAL_COST * anchor_cost]
        out[label] = {
            "cheapest_at_99": min(good, key=lambda r: r["cost_usd"]) if good else None,
            "best_slo_at_0.6": max(cheap, key=lambda r: r["slo_pct"]) if cheap else None}
    return out


def run(args, out: Path):
    from agentc.bench.serve_bench import AGENTS, CLUSTER, TRACES, _start_s
    from agentc.compiler import place_file

    quick = bool(getattr(args, "quick", False))
    start_s, measured_on = _start_s(quick)
    _say(f"replica start {start_s:.2f} s (measured: {measured_on})")
    hour = 600.0 if quick else 3600.0
    arrivals = reshape(read_trace(TRACES / "azure_llm_2023_code.csv"), duration_s=hour)
    graph = with_sla(from_placement(place_file(AGENTS["rag"], CLUSTER)), arrivals, None)
    _say(f"stages:\n{graph.table()}\nSLA {graph.sla_s * 1e3:.1f} ms")
    jobs = _jobs(graph, arrivals, start_s, quick)
    runs = []
    with Pool(2) as pool:
        for k, (label, knobs, r) in enumerate(pool.imap_unordered(_one, jobs), 1):
            runs.append({"label": label, **knobs, **r})
            _say(f"[{k}/{len(jobs)}] {label} {knobs}: SLO {r['slo_pct']}%, ${r['cost_usd']:.2f}")
    anchor = next(r for r in runs if r["label"] == "static-peak")
    for r in runs:
        r["cost_ratio"] = round(r["cost_usd"] / anchor["cost_usd"], 4)
    runs.sort(key=lambda r: (r["label"], r["cost_usd"]))
    front = frontier([r for r in runs if r["label"] != "static-peak"], anchor["cost_usd"])
    _plot(runs, out / "frontier.png", start_s)
    summary = {"static_peak_slo_pct": anchor["slo_pct"]}
    for label, f in front.items():
        key = _key(label)
        c, b = f["cheapest_at_99"], f["best_slo_at_0.6"]
        summary[f"{key}_cost_ratio_at_99"] = c["cost_ratio"] if c else None
        summary[f"{key}_slo_pct_at_0p6"] = b["slo_pct"] if b else None
    params = {"cluster": CLUSTER, "agent": AGENTS["rag"], "trace": "azure_llm_2023_code.csv", "hour_s": hour,
              "sla_ms": round(graph.sla_s * 1e3, 2), "start_s": round(start_s, 3), "start_measured_on": measured_on,
              "hypothetical_starts": list(HYPOTHETICAL_STARTS), "quick": quick, "mode": "simulate"}
    return params, {"runs": runs, "frontier": front, "anchor": anchor}, summary


def _plot(runs: list[dict], path: Path, start_s: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 5))
    for k, label in enumerate(dict.fromkeys(r["label"] for r in runs)):
        pts = sorted((r["cost_ratio"], r["slo_pct"]) for r in runs if r["label"] == label)
        style = "*" if label == "static-peak" else ("s--" if label.startswith("clairvoyant") else "o")
        ax.plot([p[0] for p in pts], [p[1] for p in pts], style, color=f"C{k}", label=label, alpha=0.8)
    ax.axvline(GOAL_COST, color="grey", lw=0.8)
    ax.axhline(GOAL_SLO, color="grey", lw=0.8)
    ax.fill_between([0, GOAL_COST], GOAL_SLO, 100.2, color="C2", alpha=0.1, label="the goal")
    ax.set_xlabel("cost / static-peak's cost")
    ax.set_ylabel("SLO attainment, %")
    ax.set_ylim(bottom=85, top=100.2)
    ax.set_title(f"RAG on the code trace's hour, simulated (measured start {start_s:.2f} s)")
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
