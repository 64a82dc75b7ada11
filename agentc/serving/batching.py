"""A stage replica that serves calls together, as a batching engine does: how much slower each
call runs when b of them share the replica, measured (`agentc bench batching`).

An LLM replica that batches runs one decode step for every sequence it holds (each at its own
position: agentc.models.batched) and prefills new prompts together. With b sequences in a
phase, a step takes `slowdown(b)` times what it takes alone, so each sequence progresses
1/slowdown(b) as fast; where prefill and decode sequences are both present, the replica
alternates their steps (half its time to each). Other stages (an encoder, a vector search)
have one phase. The curves come from `docs/results/batching/<device>/summary.json`: time(b) /
time(1) per operator at the batch sizes measured, linear between them, and past the largest
proportional to b (the operator taken as compute-bound there: the pessimistic reading).

`capacity` turns a curve into what the scaler and admission need: the batch a replica is
sized for (the cheapest per call whose slower calls still leave the SLA's slack) and the
replica-seconds one call costs at that batch. A replica holds at most that many calls (an
engine's maximum of sequences, chosen from the curve); more wait for room.
"""

from __future__ import annotations

import bisect
import json
import math
from dataclasses import dataclass
from pathlib import Path

PREFILL, DECODE = "prefill", "decode"
# Which measured operator's curve a stage's phase follows (agentc/bench/batching.py names).
OPERATORS = {"llm": {PREFILL: "llm_prefill", DECODE: "llm_decode_step"}, "encoder": {PREFILL: "minilm_block"},
             "search": {PREFILL: "similarity"}}


@dataclass(frozen=True)
class Curve:
    points: tuple[tuple[int, float], ...]  # (b, time(b) / time(1)), b ascending from 1

    def __call__(self, b: float) -> float:
        if b <= 1:
            return 1.0
        bs = [p[0] for p in self.points]
        last_b, last_f = self.points[-1]
        if b >= last_b:
            return last_f * b / last_b
        i = bisect.bisect_right(bs, b)
        (b0, f0), (b1, f1) = self.points[i - 1], self.points[i]
        return f0 + (f1 - f0) * (b - b0) / (b1 - b0)


@dataclass(frozen=True)
class Batching:
    """A stage's replica takes up to `max_batch` calls at once; `curves` per phase (an LLM
    stage: prefill and decode; others: prefill alone, the whole call)."""

    max_batch: int
    curves: dict[str, Curve]
    source: str = ""

    def slowdown(self, phase: str, b: float) -> float:
        return self.curves.get(phase, self.curves[PREFILL])(b)

    def call_s(self, prefill_s: float, decode_s: float, b: float) -> float:
        """A call's time on a replica that holds `b` calls all in the same phase as it."""
        return prefill_s * self.slowdown(PREFILL, b) + decode_s * self.slowdown(DECODE, b)

    def capacity(self, prefill_s: float, decode_s: float, slack_s: float) -> tuple[int, float]:
        """(batch, replica-seconds per call): of the batches up to max_batch whose call time
        stays within the call alone plus `slack_s`, the one that costs least per call (a
        larger batch can cost more: measured curves have cliffs), and that cost."""
        alone = prefill_s + decode_s
        feasible = [b for b in range(1, self.max_batch + 1) if self.call_s(prefill_s, decode_s, b) <= alone + slack_s]
        best = min(feasible, key=lambda b: (self.call_s(prefill_s, decode_s, b) / b, b))
        return best, self.call_s(prefill_s, decode_s, best) / best


def split(call, service_s: float) -> tuple[float, float]:
    """A call's (prefill, decode) seconds alone: an LLM call's first token comes with its
    prefill; another stage's call is one phase."""
    pre = min(call.prefill_s, service_s) if call.max_tokens else service_s
    return pre, service_s - pre


def stage_capacity(graph, stage: str, b: Batching) -> tuple[int, float, object]:
    """A batching stage of `graph` (agentc/serving/stages.py): the batch its replicas are
    sized for (slower calls within half the SLA's slack over the unloaded latency), the
    replica-seconds per call there over the call alone (what the scaler and the static
    baselines multiply a call's service by), and the slowdown of a whole call held with n."""
    call = next(c for c in graph.calls if c.stage == stage)
    pre, dec = split(call, call.service_s)
    slack = max(0.0, (graph.sla_s or 0.0) - graph.latency_s()) * 0.5
    size, per = b.capacity(pre, dec, slack)
    return size, per / max(pre + dec, 1e-12), lambda n: b.call_s(pre, dec, n) / max(pre + dec, 1e-12)


def _curve(rows: dict) -> Curve:
    pts = sorted((int(b), r["median_ms"]) for b, r in rows.items())
    t1 = dict(pts)[1]
    return Curve(tuple((b, t / t1) for b, t in pts))


def load(summary: Path | str, kind: str, max_batch: int) -> Batching:
    """The curves of a stage `kind` (llm | encoder | search) from a batching summary.json."""
    path = Path(summary)
    try:
        record = json.loads(path.read_text())
        results = record["results"]
        curves = {phase: _curve(results[op]) for phase, op in OPERATORS[kind].items()}
    except (OSError, ValueError, KeyError) as e:
        raise ValueError(f"{path}: no batching curve for a {kind} stage ({e})") from None
    device = record.get("params", {}).get("device", "?")
    return Batching(max_batch, curves, f"{path} ({device})")


def stage_kind(stage_name: str, call) -> str:
    """llm for a stage whose calls generate tokens, search for an index, else encoder."""
    if call.max_tokens:
        return "llm"
    return "search" if stage_name.startswith("index_") else "encoder"


def for_graph(graph, curves: str, max_batch: int) -> dict[str, Batching]:
    """Every stage of `graph` batching up to `max_batch`, each with the curves of its kind
    from `curves`: one batching summary.json for all stages, or `TYPE=FILE,...` per device
    type (a stage whose type is not named does not batch)."""
    if max_batch < 2:
        return {}
    files = dict(item.split("=", 1) for item in curves.split(",")) if "=" in curves else None
    out = {}
    for name, stage in graph.stages.items():
        path = curves if files is None else files.get(stage.device_type)
        if path:
            call = next(c for c in graph.calls if c.stage == name)
            out[name] = load(path, stage_kind(name, call), max_batch)
    return out


def factors(graph, batching: dict[str, Batching]) -> dict[str, float]:
    """Per batching stage, replica-seconds per call at its sized batch over the call alone."""
    return {s: stage_capacity(graph, s, b)[1] for s, b in batching.items()}


class SharedReplica:
    """Processor sharing on one replica: each held call has work left per phase (seconds it
    would take alone); `advance` moves them all on at the rates `Batching` gives, `next_s`
    says when the next one finishes a phase."""

    def __init__(self, batching: Batching, now: float = 0.0):
        self.b = batching
        self.items: list[list] = []  # [prefill left, decode left, payload]
        self.t = now

    def __len__(self) -> int:
        return len(self.items)

    def _rates(self) -> tuple[float, float]:
        bp = sum(1 for it in self.items if it[0] > 0)
        bd = len(self.items) - bp
        share = 0.5 if bp and bd else 1.0
        return (share / self.b.slowdown(PREFILL, bp) if bp else 0.0,
                share / self.b.slowdown(DECODE, bd) if bd else 0.0)

    def advance(self, now: float) -> list:
        """Move every call on to `now`; return the payloads of those that finished."""
        dt = now - self.t
        rp, rd = self._rates()
        for it in self.items:
            if it[0] > 0:
                it[0] -= dt * rp
                if it[0] <= 1e-12:
                    it[0] = 0.0
            else:
                it[1] -= dt * rd
        self.t = now
        keep, done = [], []
        for it in self.items:
            (done if it[0] <= 0 and it[1] <= 1e-12 else keep).append(it)
        self.items = keep
        return [it[2] for it in done]

    def add(self, now: float, prefill_s: float, decode_s: float, payload) -> None:
        self.advance(now)
        self.items.append([max(prefill_s, 0.0), max(decode_s, 0.0), payload])

    def next_s(self) -> float:
        """Seconds from the last `advance` until the next call ends a phase (inf: none held)."""
        rp, rd = self._rates()
        return min(((it[0] / rp) if it[0] > 0 else (it[1] / rd) for it in self.items), default=math.inf)
