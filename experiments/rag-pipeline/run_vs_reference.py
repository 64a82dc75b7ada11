"""Run a build against the PyTorch/NumPy reference of the same agent, on whatever devices
the build was placed on, and time it.

    python experiments/rag-pipeline/run_vs_reference.py BUILD --query "..." [--query ...] [--repeat 20] [--out DIR]

For each query: the build's outputs must equal the reference's (text identical; the
embedding within 1e-4; the same retrieved passages). Then `--repeat` requests per query
give the median and p90 request latency and the measured time per operator and device,
printed beside the placement's predictions. Writes DIR/run.json and DIR/trace.json.
Exits 1 if any output differs from the reference.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("build")
    ap.add_argument("--query", action="append", required=True)
    ap.add_argument("--repeat", type=int, default=10)
    ap.add_argument("--out", default="build/results/run_vs_reference")
    args = ap.parse_args(argv)

    import agentc
    from agentc.frontend.reference import run_reference
    from agentc.frontend.trace import trace_file

    build = Path(args.build)
    plan = json.loads((build / "plan.json").read_text())
    graph = trace_file(build / "graph.py", plan["agent"])
    fetch = [op["name"] for op in plan["ops"] if op["kind"] == "call" and op["name"].endswith(("/pool", "/top3"))]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report = {"build": str(build), "devices": plan["devices"], "queries": []}
    ok = True
    t_load = time.perf_counter()
    with agentc.load(build) as s:
        load_s = time.perf_counter() - t_load
        for q in args.query:
            got = s.run({"query": q}, fetch=fetch)
            ref = run_reference(graph, {"query": q})
            same_text = got["outputs"] == ref["outputs"]
            diffs = {}
            for name, value in got["values"].items():
                node = name.split("/")[0]
                if node in ref["values"]:
                    diffs[name] = float(np.max(np.abs(np.asarray(value, np.float64) -
                                                      np.asarray(ref["values"][node], np.float64))))
            ok &= same_text and all(d <= 1e-4 for d in diffs.values())
            times = []
            for i in range(args.repeat):
                t0 = time.perf_counter()
                s.run({"query": q})
                times.append(time.perf_counter() - t0)
                print(f"\r{q[:40]!r}: request {i + 1}/{args.repeat}", end="", file=sys.stderr, flush=True)
            print(file=sys.stderr)
            report["queries"].append({
                "query": q, "outputs": got["outputs"], "reference_equal": same_text, "max_abs_diff": diffs,
                "median_ms": statistics.median(times) * 1e3,
                "p90_ms": sorted(times)[int(0.9 * (len(times) - 1))] * 1e3})
        trace = s.trace
        trace.write(out / "trace.json")
    measured = _per_op_ms(out / "trace.json")
    report["load_s"] = load_s
    report["ops"] = [{"name": op["name"], "device": op["device"], "predicted_ms": (op["end"] - op["start"]) * 1e3,
                      "measured_median_ms": measured.get(op["name"])} for op in plan["ops"]]
    (out / "run.json").write_text(json.dumps(report, indent=1))
    print(f"{'operator':<24} {'device':<8} {'predicted ms':>12} {'measured ms':>12}")
    for row in report["ops"]:
        m = row["measured_median_ms"]
        print(f"{row['name']:<24} {row['device']:<8} {row['predicted_ms']:12.3f} "
              f"{m if m is None else f'{m:12.3f}'}")
    for qr in report["queries"]:
        print(f"{qr['query']!r}: reference_equal={qr['reference_equal']} max_abs_diff={qr['max_abs_diff']} "
              f"median {qr['median_ms']:.2f} ms p90 {qr['p90_ms']:.2f} ms; output {qr['outputs']!r}")
    print(f"session load {load_s:.2f} s; results in {out}")
    print(f"reference_equal={ok}")
    return 0 if ok else 1


def _per_op_ms(trace_path: Path) -> dict[str, float]:
    events = json.loads(trace_path.read_text())
    events = events.get("traceEvents", events) if isinstance(events, dict) else events
    durations: dict[str, list[float]] = {}
    for e in events:
        if e.get("ph") == "X":
            durations.setdefault(e["name"], []).append(e["dur"] / 1e3)
    return {n: statistics.median(d) for n, d in durations.items()}


if __name__ == "__main__":
    sys.exit(main())
