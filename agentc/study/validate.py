"""`agentc study check`: the study's per-request figure against what runs, one request at a time.

For each agent: a build compiled for this machine's cpu, run here (one warm-up, then
`requests` requests, each alone), with the models' seeded random weights
(AGENTC_RANDOM_WEIGHTS=1: the same architectures and kernels, and every generation runs to
its max_tokens, as the study prices it; real weights stop at end-of-turn after a varying
number of tokens), beside the study's figure for the same placement (every
call on this machine's CPU, one replica per stage, so a fan-out's branches take turns as
they do on one device). The study's figure is given twice: from the cost model alone, and
after `agentc calibrate` ran the RAG agent's build here (records in the namespace
`namespace`, by default `NAMESPACE`, which `agentc study tco --measured study-check` then
prices with): the RAG
agent is then priced from its own measurement, the others from the calibration's kernels
and op-class corrections (they share the SmolLM2 and MiniLM kernels at other budgets).
For the H100, the recorded run of the RAG agent's step build on an H100
(docs/results/decode/h100/same-machine-chunk31.json: real architectures, random weights,
32 tokens per request) beside the study's figure for the RAG agent on an H100, uncalibrated
(calibration needs torch-mlir on the GPU machine, which it does not have).
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from agentc.study.fleets import CPU
from agentc.study.profile import profile_agent
from agentc.study.run import AGENTS, EXAMPLES
from agentc.study.sizing import latency, stage_of

ROOT = Path(__file__).resolve().parents[2]
H100_RUN = ROOT / "docs/results/decode/h100/same-machine-chunk31.json"
H100 = "nvidia-h100-sxm"
QUESTIONS = {"rag": {"query": "Where does the Rhine flow?"},
             "rewrite_rag": {"message": "so like where does the rhine actually go?"},
             "panel": {"question": "Should a small city build a tram line?"},
             "tools": {"message": "Is it a good weekend for a trip to Basel, and what is 200 EUR in CHF?"}}


NAMESPACE, NONE = "study-check", "study-uncalibrated"  # measured-time namespaces (agentc/cost/measured.py)
CALIBRATE_ON = "rag"


def predicted_ms(graph: str, device_type: str, namespace: str) -> float:
    os.environ["AGENTC_MEASURED"] = namespace
    profile = profile_agent(graph, [device_type])
    where = {n.name: device_type for n in profile.calls}
    return latency(profile, where, {}, dict.fromkeys((stage_of(n.model, device_type) for n in profile.calls), 1))[0] * 1e3


def measured_ms(build: Path, inputs: dict, requests: int) -> list[float]:
    import agentc

    with agentc.load(build) as s:
        s.run(inputs)  # warm-up: first-use costs are not the steady state the study prices
        out = []
        for _ in range(requests):
            t = time.perf_counter()
            s.run(inputs)
            out.append((time.perf_counter() - t) * 1e3)
    return out


def check(agents: list[str], requests: int = 5, say=print, namespace: str = NAMESPACE) -> dict:
    import agentc
    from agentc.cost.calibrate import calibrate

    before = {k: os.environ.get(k) for k in ("AGENTC_MEASURED", "AGENTC_RANDOM_WEIGHTS")}
    os.environ["AGENTC_RANDOM_WEIGHTS"] = "1"
    rows = {}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            builds = {}
            for key in dict.fromkeys([CALIBRATE_ON, *agents]):
                say(f"check: compiling {key} for this machine's cpu", file=sys.stderr)
                builds[key] = agentc.compile(str(EXAMPLES / AGENTS[key][0]), str(Path(tmp) / key), devices=["cpu"],
                                             quiet=True).build_dir
            os.environ["AGENTC_MEASURED"] = namespace
            calibrate(str(builds[CALIBRATE_ON]), QUESTIONS[CALIBRATE_ON], requests, say=lambda *a, **k: None)
            for key in agents:
                say(f"check: {key}: {requests} requests", file=sys.stderr)
                graph = str(EXAMPLES / AGENTS[key][0])
                times = measured_ms(builds[key], QUESTIONS[key], requests)
                med = statistics.median(times)
                raw, cal = predicted_ms(graph, CPU, NONE), predicted_ms(graph, CPU, namespace)
                rows[key] = {"device": "this machine's CPU", "predicted_ms": round(cal, 1),
                             "predicted_uncalibrated_ms": round(raw, 1), "measured_median_ms": round(med, 1),
                             "measured_ms": [round(t, 1) for t in times], "error_pct": round(100 * (cal / med - 1), 1),
                             "error_uncalibrated_pct": round(100 * (raw / med - 1), 1),
                             "calibrated_on": CALIBRATE_ON}
        if "rag" in agents and H100_RUN.is_file():
            run = json.loads(H100_RUN.read_text())
            med = run["summary"]["agentc"]["median_ms"]
            pred = predicted_ms(str(EXAMPLES / AGENTS["rag"][0]), H100, NONE)
            rows["rag@h100"] = {"device": run["device"], "predicted_ms": round(pred, 1),
                                "measured_median_ms": round(med, 1), "measured_in": str(H100_RUN.relative_to(ROOT)),
                                "error_pct": round(100 * (pred / med - 1), 1)}
    finally:
        for k, v in before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return rows
