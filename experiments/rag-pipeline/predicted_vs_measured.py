"""The cost model against a run: each operator's predicted time (the build's plan) beside
its measured time (a runtime trace), grouped by operator kind.

    python experiments/rag-pipeline/predicted_vs_measured.py BUILD/plan.json TRACE.json [--requests all|last]

Operator names are grouped with their numbers replaced by N (`answer/decode7` ->
`answer/decodeN`). For each group: count per request, predicted and measured medians, and
measured / predicted; then the request's predicted latency against the measured span
(first operator start to last operator end), median over the chosen requests. Host
operators the trace records are included; operators that did not run (skipped after
end-of-turn) are not.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
from pathlib import Path


def group(name: str) -> str:
    return re.sub(r"\d+", "N", name)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("plan")
    p.add_argument("trace")
    p.add_argument("--requests", choices=("all", "last"), default="all")
    args = p.parse_args(argv)
    plan = json.loads(Path(args.plan).read_text())
    predicted: dict[str, list[float]] = {}
    for op in plan["placement"]["ops"]:
        predicted.setdefault(group(op["name"]), []).append(op["end_ms"] - op["start_ms"])
    events = [e for e in json.loads(Path(args.trace).read_text())["traceEvents"] if e.get("ph") == "X"]
    requests = sorted({e["args"]["request"] for e in events})
    if args.requests == "last":
        requests = requests[-1:]
    measured: dict[str, list[float]] = {}
    spans = []
    for r in requests:
        ev = [e for e in events if e["args"]["request"] == r]
        spans.append((max(e["ts"] + e["dur"] for e in ev) - min(e["ts"] for e in ev)) / 1e3)
        for e in ev:
            measured.setdefault(group(e["name"]), []).append(e["dur"] / 1e3)
    rows = sorted(measured, key=lambda g: -sum(measured[g]))
    print(f"{'operators':32s} {'per req':>7s} {'predicted ms':>12s} {'measured ms':>12s} {'ratio':>7s}")
    for g in rows:
        pred = statistics.median(predicted[g]) if g in predicted else float("nan")
        meas = statistics.median(measured[g])
        print(f"{g:32s} {len(measured[g]) / len(requests):7.1f} {pred:12.3f} {meas:12.3f} {meas / pred:7.2f}")
    total = plan["placement"]["predicted_ms"]
    span = statistics.median(spans)
    print(f"request: predicted {total:.1f} ms, measured span {span:.1f} ms (median of {len(requests)}), "
          f"ratio {span / total:.2f}")


if __name__ == "__main__":
    main()
