"""A load test's numbers and plot, from its per-request rows.

Percentiles are over every request sent: one refused (429/503), failed or lost counts as
past the SLA (an infinite latency), so a service cannot look faster by turning work away.
SLO attainment is the share of requests sent that completed (200) within the SLA.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

REFUSED = (429, 503)


def _pct(values: list[float], q: float) -> float | None:
    """The q-th percentile (nearest rank), None if empty, inf if it falls on a miss."""
    if not values:
        return None
    xs = sorted(values)
    v = xs[max(0, math.ceil(q / 100 * len(xs)) - 1)]
    return round(v, 2) if math.isfinite(v) else float("inf")


def summarize(rows: list[dict], sla_ms: float, span_s: float, mode: str) -> dict:
    sent = len(rows)
    ok = [r for r in rows if r["status"] == 200]
    refused = sum(1 for r in rows if r["status"] in REFUSED)
    answered = sum(1 for r in rows if r["status"] and r["status"] not in REFUSED)
    within = [r for r in ok if r["latency_ms"] <= sla_ms]
    latency = [r["latency_ms"] if r["status"] == 200 else math.inf for r in rows]
    lags = [max(0.0, (r["sent_s"] - r["arrival_s"]) * 1e3) for r in rows]
    span = max(span_s, max((r["end_s"] or 0.0 for r in rows), default=0.0), 1e-9)
    return {"mode": mode, "sla_ms": sla_ms, "sent": sent, "completed": answered, "ok": len(ok), "refused": refused,
            "errors": answered - len(ok), "lost": sent - answered - refused,
            "p50_ms": _pct(latency, 50), "p95_ms": _pct(latency, 95), "p99_ms": _pct(latency, 99),
            "slo_pct": round(100.0 * len(within) / sent, 2) if sent else 0.0,
            "throughput_rps": round(len(ok) / span, 3), "goodput_rps": round(len(within) / span, 3),
            "send_lag_p99_ms": _pct(lags, 99) or 0.0, "span_s": round(span, 2)}


def plot(rows: list[dict], path: Path, title: str, sla_ms: float, replicas: list | None = None) -> None:
    """Arrival rate per second, each request's latency at its arrival, and (serving a build
    here) the replicas over time: a list of (s, replicas), or one per stage by name."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(3 if replicas else 2, 1, figsize=(9, 8 if replicas else 6), sharex=True)
    a, b = axes[0], axes[1]
    at = np.array([r["arrival_s"] for r in rows])
    if len(at):
        bins = np.arange(0, math.floor(at.max()) + 2)
        a.hist(at, bins=bins, color="C0")
    a.set_ylabel("arrivals per s")
    a.set_title(title)
    for ok, color, label in ((True, "C2", "200"), (False, "C3", "refused/failed/lost")):
        pts = [(r["arrival_s"], r["latency_ms"]) for r in rows if (r["status"] == 200) == ok and r["latency_ms"]]
        if pts:
            b.scatter([x for x, _ in pts], [y for _, y in pts], s=6, color=color, label=label)
    b.axhline(sla_ms, color="C1", linestyle="--", label=f"SLA {sla_ms:g} ms")
    b.set_yscale("log")
    b.set_xlabel("s since the start (arrival)")
    b.set_ylabel("latency, ms")
    b.legend(fontsize=7)
    if replicas:
        tracks = replicas if isinstance(replicas, dict) else {"replicas": replicas}
        for k, (name, pts) in enumerate(tracks.items()):
            axes[2].step([t for t, _ in pts], [n for _, n in pts], where="post", color=f"C{4 + k}", label=name)
        axes[2].set_ylabel("replicas")
        if len(tracks) > 1:
            axes[2].legend(fontsize=7)
        axes[2].set_xlabel("s since the start")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
