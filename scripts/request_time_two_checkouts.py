"""Per-request time of the single-process runtime in two agentc checkouts, A/B interleaved
(this machine is shared and noisy: alternating keeps both under the same load).

    python scripts/request_time_two_checkouts.py OLD_CHECKOUT NEW_CHECKOUT [--runs 5] [--requests 200]

Each run is a fresh process per checkout (the same Python, the checkout first on
PYTHONPATH): compile examples/rag_agent.py for the cpu (cache warm after the first run),
load it, 20 warm-up requests, then the median time of `--requests` requests. Prints the
medians over runs and ends with `request_ratio=X` (new / old).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

CODE = """
import json, statistics, sys, tempfile, time
import agentc
out = tempfile.mkdtemp()
agentc.compile("examples/rag_agent.py", out, devices=["cpu"], quiet=True)
q = {"query": "What is 12 * 7 and where does the Rhine flow?"}
with agentc.load(out) as s:
    for _ in range(20):
        s.run(q)
    t = []
    for _ in range(int(sys.argv[1])):
        t0 = time.perf_counter(); s.run(q); t.append(time.perf_counter() - t0)
print(json.dumps({"median_ms": statistics.median(t) * 1e3}))
"""


def _run(checkout: str, requests: int) -> float:
    env = dict(os.environ, PYTHONPATH=checkout)
    done = subprocess.run([sys.executable, "-c", CODE, str(requests)], cwd=checkout, env=env,
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])["median_ms"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("old")
    p.add_argument("new")
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--requests", type=int, default=200)
    a = p.parse_args()
    os.environ.setdefault("AGENTC_CACHE", tempfile.mkdtemp(prefix="agentc-ab-cache-"))
    times: dict[str, list[float]] = {"old": [], "new": []}
    for r in range(a.runs):
        order = ("old", "new") if r % 2 == 0 else ("new", "old")
        for side in order:
            times[side].append(_run(getattr(a, side), a.requests))
        print(f"run {r + 1}/{a.runs}: old {times['old'][-1]:.3f} ms, new {times['new'][-1]:.3f} ms",
              file=sys.stderr, flush=True)
    old, new = statistics.median(times["old"]), statistics.median(times["new"])
    print(f"per-request median over {a.runs} runs of {a.requests}: old {old:.3f} ms, new {new:.3f} ms; "
          f"load average {os.getloadavg()[0]:.2f}")
    print(f"request_ratio={new / old:.3f}")


if __name__ == "__main__":
    main()
