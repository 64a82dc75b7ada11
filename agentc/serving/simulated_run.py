"""`agentc loadtest TARGET --simulate`: the load test over simulated time.

TARGET is a build directory (its plan) or a graph.py placed on `--cluster` (no compile:
a fleet that is not here can be simulated). Its stages (agentc/serving/stages.py) run in the
simulator (agentc/serving/simulate.py) under agentc's scaler; with `--compare`, the three
static baselines run on the same arrivals too (agentc/serving/compare.py).

Writes requests.csv (the dynamic run's rows), report.json, loadtest.png (arrivals, latency,
replicas per stage) to `--out`; ends with the comparison's key=value line (or the plain load
test's without `--compare`).
"""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path

from agentc.serving import baselines
from agentc.serving.autoscale import ScalePolicy
from agentc.serving.batching import factors, for_graph
from agentc.serving.compare import compare, key_line, report, table
from agentc.serving.load_report import plot
from agentc.serving.simulate import Deployment, simulate
from agentc.serving.stage_scaler import SLOTS
from agentc.serving.stages import StageGraph, from_placement, from_plan


def stage_graph_of(target: str, cluster: str | None, arrival_rate: float | None = None,
                   measured: bool = False) -> StageGraph:
    """The stages of a build (service times predicted, or with `measured` timed here:
    agentc/serving/measured.py) or of a graph.py placed on `cluster`."""
    path = Path(target)
    if (path / "plan.json").is_file():
        if measured:
            from agentc.serving.measured import QUESTIONS, measured_plan

            return from_plan(measured_plan(path, QUESTIONS))
        return from_plan(json.loads((path / "plan.json").read_text()))
    if path.suffix == ".py" and path.is_file():
        from agentc.compiler import place_file

        return from_placement(place_file(str(path), cluster, arrival_rate=arrival_rate))
    from agentc.serving.arrivals import ArrivalsError

    raise ArrivalsError(f"{target}: neither a build directory (plan.json) nor a graph.py")


def policy_of(args, graph: StageGraph, start_s: float) -> ScalePolicy:
    return ScalePolicy(sla_s=graph.sla_s, service_s=graph.latency_s(), start_s=start_s,
                       min_replicas=args.min_replicas, max_replicas=args.max_replicas,
                       target_utilisation=args.target_utilisation, hold_s=args.hold_s)


def with_sla(graph: StageGraph, arrivals, sla_ms: float | None) -> StageGraph:
    """The SLA of the run: given, else twice the unloaded median of these arrivals."""
    sla = sla_ms / 1e3 if sla_ms else 2 * baselines.unloaded_p50(graph, arrivals)
    return dataclasses.replace(graph, sla_s=sla)


def runner_for(graph: StageGraph, arrivals, policy: ScalePolicy, margin: float, timeout_s: float | None,
               hop_s: float = 0.0, batching: dict | None = None, slots: int = SLOTS):
    def run(scaling: str, replicas: dict[str, int]):
        return simulate(graph, arrivals, Deployment(scaling, replicas, policy, margin, timeout_s, hop_s=hop_s,
                                                    slots=slots, batching=batching or {}))

    return run


def run(args, arrivals) -> int:
    graph = stage_graph_of(args.target, args.cluster, measured=args.measured_service)
    graph = with_sla(graph, arrivals, args.sla_ms)
    start_s = args.start_s if args.start_s is not None else _measured_start(args.target)
    policy = policy_of(args, graph, start_s)
    batching = _batching(args, graph)
    runner = runner_for(graph, arrivals, policy, args.admission_margin, args.timeout, args.hop_ms / 1e3, batching)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    initial = dict.fromkeys(graph.stages, max(1, args.min_replicas))
    if args.compare:
        result, rows = compare(graph, arrivals, runner, policy.target_utilisation, "simulate", args.scaling, initial,
                               factors=factors(graph, batching))
        timeline = result["dynamic"].pop("timeline")
        print(table(result))
    else:
        rows, costs = runner(args.scaling, initial)
        result = {"mode": "simulate", "dynamic": report(rows, costs, graph, arrivals[-1].at, "simulate")}
        timeline = costs["timeline"]
    result.update(stages=graph.table(), start_s=start_s, policy=policy.kwargs(), scaling=args.scaling,
                  batching={s: {"max_batch": b.max_batch, "curves": b.source} for s, b in batching.items()})
    with open(out / "requests.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=sorted({k for r in rows for k in r}))
        w.writeheader()
        w.writerows(rows)
    (out / "report.json").write_text(json.dumps(result, indent=1, default=str) + "\n")
    plot(rows, out / "loadtest.png", f"{graph.agent or args.target}: simulated, {args.scaling} scaling",
         graph.sla_s * 1e3, per_stage(timeline))
    d = result["dynamic"]
    if args.compare:
        print(key_line(result))
    else:
        print(f"p50_ms={d['p50_ms']} p95_ms={d['p95_ms']} p99_ms={d['p99_ms']} slo_pct={d['slo_pct']} "
              f"lost={d['lost']} mode=simulate")
    return 0


def _batching(args, graph: StageGraph) -> dict:
    from agentc.serving.arrivals import ArrivalsError

    if not args.batch:
        return {}
    try:
        return for_graph(graph, args.batch_curves, args.batch)
    except ValueError as e:
        raise ArrivalsError(f"--batch-curves: {e}") from None


def per_stage(timeline: list[tuple[float, dict[str, int]]]) -> dict[str, list[tuple[float, int]]]:
    out: dict[str, list] = {}
    for t, counts in timeline:
        for s, n in counts.items():
            out.setdefault(s, []).append((t, n))
    return out


def _measured_start(target: str) -> float:
    from agentc.serving.arrivals import ArrivalsError
    from agentc.serving.emulated import measured_start_s

    if not (Path(target) / "plan.json").is_file():
        raise ArrivalsError("--start-s: give the replica start time (seconds) when TARGET is not a build to measure")
    return measured_start_s(target)
