"""`agentc bench verify-load`: what checking a build against its manifest costs at load.

The real RAG build (examples/rag_agent_real.py: MiniLM, SmolLM2-135M, ~630 MB of weights)
is loaded by fresh processes, from `agentc.load` to the first output of one request, in
three modes, rotated so that each sees the same machine: `off` (no check: the anchor),
`verify` (the default: every file's hash from the memo, agentc/store.py) and `cold` (the
memo of the build's files removed first, so every file is hashed). Goal: `verify` at most
10% slower than `off` (median of --runs, default 5).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

MODES = ("off", "verify", "cold")
QUERY = "What is 12 * 7 and where does the Rhine flow?"


def run(args, out: Path):
    import tempfile

    import agentc

    runs = args.runs
    with tempfile.TemporaryDirectory(prefix="agentc-verify-load-") as tmp:
        build = Path(tmp) / "rag_real"
        print("[bench] compiling examples/rag_agent_real.py (cpu)", file=sys.stderr, flush=True)
        agentc.compile("examples/rag_agent_real.py", str(build), devices=["cpu"], quiet=True)
        size = sum(p.stat().st_size for p in build.rglob("*") if p.is_file())
        times: dict[str, list[dict]] = {m: [] for m in MODES}
        for r in range(runs):
            order = MODES[r % 3:] + MODES[:r % 3]
            for mode in order:
                if mode == "cold":
                    forget(build)
                done = subprocess.run([sys.executable, "-m", "agentc.bench.verify_load", str(build), mode],
                                      capture_output=True, text=True, check=False)
                if done.returncode != 0:
                    raise RuntimeError(f"verify-load {mode} run failed: {done.stderr.strip().splitlines()[-1:]}")
                t = json.loads(done.stdout.strip().splitlines()[-1])
                times[mode].append(t)
                print(f"[bench] run {r + 1}/{runs} {mode:<6} load to first output {t['total_s']:.3f} s "
                      f"(check {t['verify_s']:.3f} s)", file=sys.stderr, flush=True)
    med = {m: statistics.median(t["total_s"] for t in times[m]) for m in MODES}
    check = {m: statistics.median(t["verify_s"] for t in times[m]) for m in MODES}
    params = {"build": "examples/rag_agent_real.py --devices cpu", "build_mb": round(size / 1e6, 1),
              "runs": runs, "query": QUERY}
    results = {"runs": times, "median_total_s": med, "median_check_s": check}
    summary = {"off_s": round(med["off"], 3), "verify_s": round(med["verify"], 3),
               "cold_s": round(med["cold"], 3), "verify_over_off": round(med["verify"] / med["off"], 3),
               "cold_over_off": round(med["cold"] / med["off"], 3)}
    print(f"median load to first output: off {med['off']:.3f} s, verify {med['verify']:.3f} s "
          f"(x{summary['verify_over_off']}), memo-cold {med['cold']:.3f} s (x{summary['cold_over_off']}); "
          f"build {size / 1e6:.0f} MB")
    return params, results, summary


def forget(build: Path) -> None:
    """Remove the verification memo of every file the build's manifest lists."""
    from agentc.store import _memo_path

    manifest = json.loads((build / "manifest.json").read_text())
    for rel in manifest["files"]:
        _memo_path(os.stat(build / rel)).unlink(missing_ok=True)


def measure(build: str, mode: str) -> None:
    """In a fresh process: load the build and run one request; the manifest check (what
    Session(verify=True) does first) is timed on its own too."""
    t0 = time.perf_counter()
    import agentc
    from agentc.runtime.verify import verify_build

    t_import = time.perf_counter() - t0
    t0 = time.perf_counter()
    if mode != "off":
        verify_build(Path(build))
    t_check = time.perf_counter() - t0
    with agentc.load(build, verify=False) as s:
        answer = s.run({"query": QUERY})["outputs"][0]
    total = time.perf_counter() - t0
    print(json.dumps({"mode": mode, "total_s": total, "verify_s": t_check, "import_s": t_import,
                      "answer_chars": len(answer)}))


if __name__ == "__main__":
    measure(sys.argv[1], sys.argv[2])
