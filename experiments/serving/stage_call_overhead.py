"""What a staged service's call costs beyond its compute, idle: the tiny RAG build served in
stages that compute, and again emulated with the service times measured in-process (what
`agentc bench serve`'s validation against real compute compares under load).

For each: the median latency of sequential requests, and each stage's call time as the
service measures it (`agentc_stage_call_seconds`: a computing stage's round trip from the
ingress; an emulated replica's hold, `--measured-service`). Beside them, in this process
(agentc/serving/measured.py `share_runs`): each call run as a stage replica runs it, its
share of the plan in a Session of its own, without Serve, and the operators it ran.

    python experiments/serving/stage_call_overhead.py [--requests 25]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from agentc.bench.serve_bench import _serve_process
from agentc.distributed.local_cluster import free_port
from agentc.serving.measured import QUESTIONS, share_runs
from agentc.serving.stage_metrics import read_stage_metric
from agentc.serving.stages import from_plan


def served(build: Path, extra: list[str], requests: int, log: Path) -> tuple[float, dict[str, float]]:
    """(median latency s, {stage: call seconds}) of one service, sequential requests."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    cli = str(Path(sys.executable).with_name("agentc"))
    server = _serve_process(cli, [str(build), "--staged", "--scaling", "static", "--start-s", "1", *extra], port, log)
    try:
        took = []
        for k in range(requests):
            body = json.dumps({"query": QUESTIONS[k % len(QUESTIONS)]}).encode()
            t0 = time.perf_counter()
            urllib.request.urlopen(urllib.request.Request(url + "/v1/agents/rag", data=body), timeout=60).read()
            took.append(time.perf_counter() - t0)
            time.sleep(0.2)
        text = urllib.request.urlopen(url + "/metrics", timeout=10).read().decode()
    finally:
        server.terminate()
        server.wait(120)
    return statistics.median(took[5:]), read_stage_metric(text, "agentc_stage_call_seconds")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--requests", type=int, default=25)
    args = p.parse_args()
    import agentc

    work = Path(tempfile.mkdtemp(prefix="agentc-stage-calls-"))
    build = work / "build"
    agentc.compile("examples/rag_agent.py", str(build), devices=["cpu"], quiet=True)
    graph = from_plan(json.loads((build / "plan.json").read_text()))
    runs = share_runs(build, QUESTIONS[0])
    share = {c.stage: runs[c.node][0] for c in graph.calls}
    alone = {c.stage: runs[c.node][1] for c in graph.calls}
    rows = {mode: served(build, extra, args.requests, work / f"{mode}.log")
            for mode, extra in (("computing", []), ("emulated", ["--emulate", "--measured-service"]))}
    print(f"{'stage':28s} {'operators':>10s} {'share run':>10s} {'computing call':>15s} {'emulated call':>14s}")
    for stage, s in alone.items():
        print(f"{stage:28s} {s * 1e3:7.2f} ms {share[stage] * 1e3:7.2f} ms "
              f"{rows['computing'][1].get(stage, 0) * 1e3:12.2f} ms {rows['emulated'][1].get(stage, 0) * 1e3:11.2f} ms")
    print(f"median request, idle: computing {rows['computing'][0] * 1e3:.1f} ms, "
          f"emulated {rows['emulated'][0] * 1e3:.1f} ms")


if __name__ == "__main__":
    main()
