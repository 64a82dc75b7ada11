"""Predicted against measured, per operator and end to end: what `agentc run --explain` and
`agentc calibrate` print.

The prediction is the build's plan (each operator's scheduled start and end); the
measurement is a request's trace (each operator's span as the runtime saw it: the call,
its transfers and readbacks). Operators are grouped with their numbers replaced by N
(`answer/decode7` -> `answer/decodeN`). Generation that stopped at end-of-turn skips the
rest of its steps; the plan schedules all of them, so the end-to-end line gives the plan's
latency and the plan's latency without the operators that did not run (their predicted
times taken off the critical path they sit on, a chain of decode steps).
"""

from __future__ import annotations

import re
import statistics
from dataclasses import dataclass


def group(name: str) -> str:
    return re.sub(r"\d+", "N", name)


@dataclass
class Explained:
    rows: list[tuple[str, float, float, float]]  # group, per request, predicted ms, measured ms
    predicted_ms: float  # the plan's latency
    predicted_ran_ms: float  # ... without the operators that did not run
    measured_ms: float  # median request span

    @property
    def error_pct(self) -> float:
        """(measured - predicted for what ran) / measured, in percent."""
        return 100 * (self.predicted_ran_ms - self.measured_ms) / self.measured_ms

    def table(self) -> str:
        lines = [f"{'operators':34s} {'per req':>7s} {'predicted ms':>12s} {'measured ms':>12s} {'meas/pred':>9s}"]
        for g, n, p, m in self.rows:
            ratio = f"{m / p:9.2f}" if p > 0 else f"{'-':>9s}"
            lines.append(f"{g:34s} {n:7.1f} {p:12.3f} {m:12.3f} {ratio}")
        lines.append(f"request: predicted {self.predicted_ms:.1f} ms ({self.predicted_ran_ms:.1f} ms for the operators "
                     f"that ran), measured {self.measured_ms:.1f} ms: error {self.error_pct:+.1f}%")
        return "\n".join(lines)


def explain(plan_ops: list[dict], predicted_ms: float, requests: list[list[tuple]]) -> Explained:
    """`plan_ops`: the plan's operators (name, start, end in seconds); `requests`: each
    request's trace events (track, name, request, start, end, note)."""
    predicted = {op["name"]: op["end"] - op["start"] for op in plan_ops}
    per_group: dict[str, list[float]] = {}
    measured: dict[str, list[float]] = {}
    spans, ran_ms = [], []
    for events in requests:
        done = [e for e in events if e[1] in predicted]
        spans.append((max(e[4] for e in done) - min(e[3] for e in done)) * 1e3)
        names = {e[1] for e in done}
        skipped = sum(t for n, t in predicted.items() if n not in names)
        ran_ms.append(predicted_ms - skipped * 1e3)
        for e in done:
            measured.setdefault(group(e[1]), []).append((e[4] - e[3]) * 1e3)
    for name, t in predicted.items():
        per_group.setdefault(group(name), []).append(t * 1e3)
    n = max(len(requests), 1)
    rows = [(g, len(ms) / n, statistics.median(per_group.get(g, [0.0])), statistics.median(ms))
            for g, ms in measured.items()]
    rows.sort(key=lambda r: -r[1] * r[3])
    return Explained(rows, predicted_ms, statistics.median(ran_ms), statistics.median(spans))


def by_request(events) -> list[list[tuple]]:
    """Trace events split by request, in request order."""
    out: dict[int, list[tuple]] = {}
    for e in events:
        out.setdefault(e[2], []).append(e)
    return [out[r] for r in sorted(out)]
