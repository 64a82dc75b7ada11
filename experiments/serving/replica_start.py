"""How long Ray Serve itself takes to start a stage replica, with nothing of agentc's to load.

Serves the RAG agent's stages emulated with a zero replica start (`agentc serve --staged
--emulate --start-s 0`: a replica's __init__ does nothing), sends a burst that makes the LLM
stage scale up, and reads the service's own measure of each start, from the ask to serving
(`agentc_stage_replica_start_seconds` in /metrics). What is left is Serve's: the actor's
worker process, its imports, the replica's start-up, and the controller seeing it run.

    python experiments/serving/replica_start.py [--runs 3] [--burst 60]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path

from agentc.bench.serve_bench import _serve_process
from agentc.distributed.local_cluster import free_port
from agentc.serving.stage_metrics import read_stage_metric

STAGE = "smollm2_135m_192x256@nvidia-t4"


def _post(url: str) -> int:
    """One request's HTTP status. A burst's requests may be refused (503) while replicas
    start; they still count as demand, which is what asks for the replicas."""
    req = urllib.request.Request(url + "/v1/agents/rag", data=b'{"query": "q"}')
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            r.read()
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def one_run(burst: int, log: Path) -> tuple[int, float, Counter]:
    """(replica starts, their mean seconds) of the LLM stage after one burst, and the
    burst's HTTP statuses."""
    import sys

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    cli = str(Path(sys.executable).with_name("agentc"))
    server = _serve_process(cli, ["examples/rag_agent_real.py", "--staged", "--emulate", "--cluster",
                                  "examples/clusters/t4_h100_cpu.yaml", "--start-s", "0", "--min-replicas", "0",
                                  "--max-replicas", "4"], port, log)
    try:
        for _ in range(3):
            _post(url)
        with concurrent.futures.ThreadPoolExecutor(burst // 2) as pool:
            statuses = Counter(pool.map(lambda _: _post(url), range(burst)))
        time.sleep(20)  # the last replica asked for comes up
        text = urllib.request.urlopen(url + "/metrics", timeout=10).read().decode()
    finally:
        server.terminate()
        server.wait(120)
    n = int(read_stage_metric(text, "agentc_stage_replica_start_seconds_count").get(STAGE, 0))
    total = read_stage_metric(text, "agentc_stage_replica_start_seconds_sum").get(STAGE, 0.0)
    return n, (total / n if n else float("nan")), statuses


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--burst", type=int, default=60, help="requests sent at once, half of them concurrently")
    args = p.parse_args()
    import os
    import tempfile

    work = Path(tempfile.mkdtemp(prefix="agentc-replica-start-"))
    for k in range(args.runs):
        n, mean, statuses = one_run(args.burst, work / f"serve-{k}.log")
        print(f"run {k + 1}: {n} replicas started, {mean:.2f} s each from ask to serving; burst answered "
              f"{dict(sorted(statuses.items()))} (load average {os.getloadavg()[0]:.2f})", flush=True)
    print(f"server logs: {work}")


if __name__ == "__main__":
    main()
