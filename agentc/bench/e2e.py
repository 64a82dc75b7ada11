"""`agentc bench e2e`: how well agentc predicts a request's latency, per agent and target.

For each target (this machine's `cpu`; `cpu,vulkan` where a Vulkan device is usable), the
calibration agent (examples/rag_agent_real.py) is compiled for each of the target's devices
alone (with its LLM per step, and per layer too where the target has several devices) and
calibrated there (agentc.cost.calibrate): a build placed on one device measures
only that device's kernels, and a calibration that raises one device's prices and leaves
another's as the roofline guessed them sends operators to the unmeasured one (with
lavapipe, 4x slower than predicted). Every other example agent is compiled before and
after, and run:
a warm-up and `--runs` requests, each explained (agentc.runtime.explain). The error of an
agent is (predicted - measured) / measured of its median request, the prediction taken
for the operators that ran (generation that stopped at end-of-turn skips the rest of its
steps, which the plan schedules). The calibration agent does not count in the error.
Calibrations made here go to a store namespace of this run's and target's own
(AGENTC_MEASURED), so the user's are neither used nor changed, and no target starts
calibrated by another.

Last lines: `e2e_mape_pct_<target>=X.X` per target and `e2e_mape_pct=X.X` (the worst).
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import uuid
from pathlib import Path
from unittest import mock

from agentc.bench.progress import Progress

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
CALIBRATION = ("rag_agent_real.py", {"query": "Who painted The Starry Night, and where?"})
CALIBRATION_RUNS = 3  # requests a calibration measures (after its warm-up): on lavapipe, ~16 s each
AGENTS = [("query_rewrite_rag.py", {"message": "so like where does the rhine actually go?"}),
          ("panel_agent.py", {"question": "Should a small city build a tram line?"}),
          ("rag_agent.py", {"query": "What is the boiling point of water?"}),
          ("fanout_agent.py", {"query": "Is coffee good for you?"})]


def _targets() -> list[tuple[str, ...]]:
    from agentc.devices import KINDS

    return [("cpu",)] + ([("cpu", "vulkan")] if KINDS["vulkan"].available() else [])


def _granularities(target: tuple[str, ...]) -> tuple[str, ...]:
    """The LLM operators' granularities the target's agents compile to: on one device a step
    each (the compiler's choice), across devices also per layer, whose kernels a step
    build never runs (left uncalibrated, they would be priced by the class factor of the
    step's kernels)."""
    return ("step",) if len(target) == 1 else ("step", "layer")


def _measure(build, inputs: dict, runs: int) -> dict:
    import agentc
    from agentc.runtime.explain import by_request, explain

    with agentc.load(build) as s:
        for _ in range(runs + 1):
            s.run(inputs)
        ex = explain(s.plan["ops"], s.plan["placement"]["predicted_ms"], by_request(s.trace.events)[1:])
    return {"predicted_ms": round(ex.predicted_ms, 1), "predicted_ran_ms": round(ex.predicted_ran_ms, 1),
            "measured_ms": round(ex.measured_ms, 1), "error_pct": round(ex.error_pct, 1)}


def run(args, out: Path):
    import agentc
    from agentc.cost.calibrate import calibrate

    runs = max(3, int(getattr(args, "runs", 5) or 5))
    namespace = f"measured-times-bench-{uuid.uuid4().hex[:8]}"
    targets = _targets()
    progress = Progress(sum(2 * len(t) * len(_granularities(t)) + 2 * len(AGENTS) for t in targets), "e2e",
                        enabled=not getattr(args, "quiet", False))
    results, here = [], os.getcwd()
    os.chdir(EXAMPLES)  # the agents name their corpora relative to themselves
    try:
        with tempfile.TemporaryDirectory(prefix="agentc-e2e-") as tmp:
            for target in targets:
                name = "+".join(target)
                os.environ["AGENTC_MEASURED"] = f"{namespace}-{name}"

                def build(graph: str, tag: str, devices=target, name=name):
                    return agentc.compile(graph, str(Path(tmp) / f"{name}-{tag}-{graph}"), devices=list(devices),
                                          quiet=True).build_dir

                before = {}
                for g, inputs in AGENTS:
                    before[g] = _measure(build(g, "before"), inputs, runs)
                    progress.step(f"{name}: {g} uncalibrated {before[g]['error_pct']:+.1f}%")
                for device in target:
                    for granularity in _granularities(target):
                        # examples/rag_agent_real.py reads it when the compiler traces it
                        with mock.patch.dict(os.environ, AGENTC_LLM_GRANULARITY=granularity):
                            cal = build(CALIBRATION[0], f"cal-{device}-{granularity}", (device,))
                        progress.step(f"{name}: calibration agent compiled for {device} ({granularity})")
                        calibrate(str(cal), CALIBRATION[1], CALIBRATION_RUNS, say=lambda *a, **k: None)
                        progress.step(f"{name}: calibrated on {CALIBRATION[0]} on {device} ({granularity})")
                for g, inputs in AGENTS:
                    after = _measure(build(g, "after"), inputs, runs)
                    progress.step(f"{name}: {g} {after['error_pct']:+.1f}%")
                    results.append({"target": name, "agent": g, "uncalibrated": before[g], **after})
    finally:
        os.chdir(here)
    summary = {}
    for target in targets:
        name = "+".join(target)
        errs = [abs(r["error_pct"]) for r in results if r["target"] == name]
        summary[f"e2e_mape_pct_{name.replace('+', '_')}"] = round(statistics.mean(errs), 1)
    summary["e2e_mape_pct"] = max(summary.values())
    (out / "table.md").write_text(_table(results))
    print(_table(results), file=sys.stderr)
    return {"runs": runs, "calibration_agent": CALIBRATION[0], "agents": [a for a, _ in AGENTS],
            "targets": ["+".join(t) for t in targets]}, results, summary


def _table(results: list[dict]) -> str:
    head = ("| target | agent | uncalibrated: predicted / measured ms (error) | calibrated: predicted for what ran "
            "/ measured ms | error |")
    lines = [head, "|---|---|---|---|---|"]
    for r in results:
        u = r["uncalibrated"]
        lines.append(f"| {r['target']} | {r['agent']} | {u['predicted_ran_ms']} / {u['measured_ms']} "
                     f"({u['error_pct']:+.1f}%) | {r['predicted_ran_ms']} / {r['measured_ms']} | {r['error_pct']:+.1f}% |")
    return "\n".join(lines) + "\n"
