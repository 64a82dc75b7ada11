"""Import time and warm compile time of two agentc installations, runs interleaved (this
machine is shared and noisy: alternating keeps both under the same load).

    python scripts/time_two_checkouts.py OLD_PYTHON OLD_CHECKOUT NEW_PYTHON NEW_CHECKOUT [--runs 7]

Each run is a fresh process: `import agentc` (and its CLI), then `agentc compile
examples/rag_agent.py --devices cpu` with the cache warm (the first compile of each side
fills it and is not counted). Prints medians and new/old ratios, ending with
`import_ratio=X` and `compile_ratio=Y`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tempfile
import time


def _timed(cmd: list[str], cwd: str) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, check=True, capture_output=True)
    return time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("old_python")
    p.add_argument("old_checkout")
    p.add_argument("new_python")
    p.add_argument("new_checkout")
    p.add_argument("--runs", type=int, default=7)
    args = p.parse_args()
    sides = {"old": (args.old_python, args.old_checkout), "new": (args.new_python, args.new_checkout)}
    times = {s: {"import": [], "compile": []} for s in sides}
    with tempfile.TemporaryDirectory() as tmp:
        def compile_cmd(py, side):
            return [py, "-m", "agentc.cli", "compile", "examples/rag_agent.py", "-o", f"{tmp}/{side}", "--devices", "cpu"]

        for side, (py, checkout) in sides.items():  # fill the cache
            _timed(compile_cmd(py, side), checkout)
        for r in range(args.runs):
            for side in (("old", "new") if r % 2 == 0 else ("new", "old")):
                py, checkout = sides[side]
                times[side]["import"].append(_timed([py, "-c", "import agentc, agentc.cli"], checkout))
                times[side]["compile"].append(_timed(compile_cmd(py, side), checkout))
    load = os.getloadavg()[0]
    med = {s: {k: statistics.median(v) for k, v in t.items()} for s, t in times.items()}
    for k in ("import", "compile"):
        print(f"{k:<8} old {med['old'][k]:.3f} s  new {med['new'][k]:.3f} s  new/old {med['new'][k] / med['old'][k]:.3f}")
    print(f"runs: {args.runs} per side, interleaved; load average at the end {load:.2f}")
    print(f"import_ratio={med['new']['import'] / med['old']['import']:.3f}")
    print(f"compile_ratio={med['new']['compile'] / med['old']['compile']:.3f}")


if __name__ == "__main__":
    main()
