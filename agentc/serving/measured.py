"""Service times measured, not predicted: run a build here and time each operator, so an
emulated or simulated service holds its calls as long as the real one does
(`--measured-service`). The placement's predictions miss what the runtime adds (issue 23
measured them 2-4x optimistic on this machine); a validation of emulation against real
compute needs the real times.

A stage replica runs each call as a share of the plan in a Session of its own, which costs
more than the call's operators: the LLM call of the tiny RAG build took 7.59 ms as a share
against 5.37 ms of the operators it ran (experiments/serving/stage_call_overhead.py). So each call's
operators are scaled by what its share run takes over the operators it ran (`share_runs`).
"""

from __future__ import annotations

import contextlib
import copy
import json
import statistics
import time
from pathlib import Path

# What load tests ask (one per request, in turn) and what service times are measured on.
QUESTIONS = ["What is 12 * 7?", "Where does the Rhine flow?", "What is 9 + 30 and who wrote Faust?",
             "How tall is Mont Blanc?", "What is 144 / 12?"]


def measured_plan(build, queries: list[str], rounds: int = 3, progress=None) -> dict:
    """The build's plan with each operator's duration the median of what it took here over
    `rounds` passes of `queries` (one request at a time, after a warm-up request), scaled
    per call to its share run (`share_runs`). An operator that never ran (generation stopped
    before it) keeps its predicted duration. The stored plan is not changed."""
    from agentc.runtime.session import Session

    plan = copy.deepcopy(json.loads((Path(build) / "plan.json").read_text()))
    took: dict[str, list[float]] = {}
    with Session(build, trace_events=None) as s:
        name = s.plan["inputs"][0]
        s.run({name: queries[0]})  # first use: tokenizers, kernels
        mark = s.trace.added
        for r in range(rounds):
            for q in queries:
                s.run({name: q})
            if progress is not None:
                progress(f"measured round {r + 1}/{rounds}")
        for op, seconds in _op_times(s.trace.since(mark)):
            took.setdefault(op, []).append(seconds)
        runs = share_runs(build, queries[0], whole=s)
    for op in plan["ops"]:
        if op["name"] in took:
            op["start"], op["end"] = 0.0, statistics.median(took[op["name"]])
    _scale(plan, runs)
    return plan


def share_runs(build, query: str, runs: int = 20, whole=None) -> dict[str, tuple[float, float]]:
    """{call node: (median seconds, median seconds of its operators)} of each call run as a
    stage replica runs it (its share of the plan, in a Session of its own:
    agentc/serving/staged.py ShareReplica), on the values one request of the whole build
    (`whole`, an open Session of it, else one opened here) gave its inputs."""
    from agentc.runtime.session import Session
    from agentc.serving.stage_plans import split, stage_plan
    from agentc.serving.stages import from_plan

    with contextlib.nullcontext(whole) if whole is not None else Session(build) as running:
        plan = running.plan
        graph = from_plan(plan)
        _, shares = split(plan, graph)
        producer = {v: op["name"] for op in plan["ops"] for v in op["outputs"]}
        wanted = sorted({producer[v] for share in shares.values() for v in share["inputs"] if v in producer})
        values = running.run({plan["inputs"][0]: query}, fetch=wanted)["values"]  # (each such op makes one value)
    out = {}
    for call in graph.calls:
        with Session(build, plan=stage_plan([call.node], shares), trace_events=None) as session:
            share = session.share(shares[call.node])
            args = {v: values[producer[v]] if v in producer else query for v in share.plan["inputs"]}
            share.run_values(args)  # warm-up
            wall, ops = [], []
            for _ in range(runs):
                mark, t0 = session.trace.added, time.perf_counter()
                share.run_values(args)
                wall.append(time.perf_counter() - t0)
                ops.append(sum(seconds for _, seconds in _op_times(session.trace.since(mark))))
            out[call.node] = (statistics.median(wall), statistics.median(ops))
    return out


def _op_times(events):
    """(operator, seconds) of a trace's operator events (not transfers or notes)."""
    for track, op, _, start, end, note in events:
        if note is None and track != "transfer" and "->" not in track:
            yield op, end - start


def _scale(plan: dict, runs: dict[str, tuple[float, float]]) -> None:
    """Scale each call node's operators by its share run's time over its operators'."""
    from agentc.serving.stages import node_of

    for op in plan["ops"]:
        wall, ops = runs.get(node_of(op["name"]), (0.0, 0.0))
        if ops > 0:
            op["start"], op["end"] = 0.0, (op["end"] - op["start"]) * wall / ops
