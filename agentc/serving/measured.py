"""Service times measured, not predicted: run a build here and time each operator, so an
emulated or simulated service holds its calls as long as the real one does
(`--measured-service`). The placement's predictions miss what the runtime adds (issue 23
measured them 2-4x optimistic on this machine); a validation of emulation against real
compute needs the real times.
"""

from __future__ import annotations

import copy
import statistics
from pathlib import Path

# What load tests ask (one per request, in turn) and what service times are measured on.
QUESTIONS = ["What is 12 * 7?", "Where does the Rhine flow?", "What is 9 + 30 and who wrote Faust?",
             "How tall is Mont Blanc?", "What is 144 / 12?"]


def measured_plan(build, queries: list[str], rounds: int = 3, progress=None) -> dict:
    """The build's plan with each operator's duration the median of what it took here over
    `rounds` passes of `queries` (one request at a time, after a warm-up request). An
    operator that never ran (generation stopped before it) keeps its predicted duration.
    The stored plan is not changed."""
    import json

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
        for track, op, _, start, end, note in s.trace.since(mark):
            if note is None and track != "transfer" and "->" not in track:
                took.setdefault(op, []).append(end - start)
    for op in plan["ops"]:
        if op["name"] in took:
            op["start"], op["end"] = 0.0, statistics.median(took[op["name"]])
    return plan
