"""When requests arrive, for load tests: a real trace replayed (../shared/traces/ columns
TIMESTAMP, ContextTokens, GeneratedTokens) or a synthetic process, as seconds from the start.

Replays are open loop: arrival times never depend on completions. Every random choice comes
from one seeded generator, so a run is repeatable.
"""

from __future__ import annotations

import csv
import datetime
from dataclasses import dataclass
from pathlib import Path

import numpy as np


class ArrivalsError(ValueError):
    """A trace or an arrival option is wrong; the message names the file and line or flag."""


@dataclass(frozen=True)
class Arrival:
    at: float  # seconds from the start
    context_tokens: int = 0
    generated_tokens: int = 0


def read_trace(path: str | Path) -> list[Arrival]:
    """The trace's requests, first at 0 s, in time order."""
    path = Path(path)
    rows = []
    try:
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            missing = {"TIMESTAMP", "ContextTokens", "GeneratedTokens"} - set(reader.fieldnames or [])
            if missing:
                raise ArrivalsError(f"{path}:1: missing column(s) {', '.join(sorted(missing))} "
                                    f"(expected TIMESTAMP,ContextTokens,GeneratedTokens)")
            for line, row in enumerate(reader, start=2):
                try:
                    when = datetime.datetime.fromisoformat(row["TIMESTAMP"][:26])
                    rows.append((when, int(row["ContextTokens"]), int(row["GeneratedTokens"])))
                except (TypeError, ValueError) as e:
                    raise ArrivalsError(f"{path}:{line}: cannot read this row ({e})") from None
    except OSError as e:
        raise ArrivalsError(f"{path}: {e.strerror}") from None
    if not rows:
        raise ArrivalsError(f"{path}: no requests")
    rows.sort(key=lambda r: r[0])
    t0 = rows[0][0]
    return [Arrival((w - t0).total_seconds(), c, g) for w, c, g in rows]


def reshape(arrivals: list[Arrival], speedup: float = 1.0, rate_scale: float = 1.0,
            duration_s: float | None = None, start_s: float = 0.0, seed: int = 0) -> list[Arrival]:
    """A window of a trace (`start_s`, `duration_s` in trace time), replayed `speedup` times
    faster, with `rate_scale` times the requests: below 1 each is kept with that probability,
    above 1 each comes floor(scale) times plus once more with the remainder's probability,
    copies a few milliseconds apart. The result is in replay time, first at 0 s."""
    for flag, v in (("--speedup", speedup), ("--rate-scale", rate_scale)):
        if not v > 0:
            raise ArrivalsError(f"{flag}: must be > 0, got {v}")
    rng = np.random.default_rng(seed)
    end = start_s + duration_s if duration_s is not None else float("inf")
    window = [a for a in arrivals if start_s <= a.at < end]
    out = []
    for a in window:
        copies = int(rate_scale) + (1 if rng.random() < rate_scale - int(rate_scale) else 0)
        for k in range(copies):
            jitter = 0.0 if k == 0 else rng.uniform(0.0, 0.005)
            out.append(Arrival((a.at - start_s) / speedup + jitter, a.context_tokens, a.generated_tokens))
    out.sort(key=lambda a: a.at)
    return out


def gamma(rate: float, cv: float, duration_s: float, seed: int = 0) -> list[Arrival]:
    """A renewal process with Gamma inter-arrivals: mean 1/rate, coefficient of variation
    `cv` (1 is Poisson; the code trace's is ~13)."""
    if not rate > 0 or not cv > 0 or not duration_s > 0:
        raise ArrivalsError(f"--rate, --cv and --duration must be > 0, got {rate}, {cv}, {duration_s}")
    rng = np.random.default_rng(seed)
    shape = 1.0 / cv**2
    out, t = [], 0.0
    while True:
        t += rng.gamma(shape, 1.0 / (rate * shape))
        if t >= duration_s:
            return out
        out.append(Arrival(t))


def steps(rates: list[float], step_s: float, seed: int = 0) -> list[Arrival]:
    """Poisson arrivals whose rate steps through `rates`, `step_s` seconds each (a burst)."""
    if not rates or any(r < 0 for r in rates) or not step_s > 0:
        raise ArrivalsError(f"--step-rates: expected rates >= 0 and --step-s > 0, got {rates}, {step_s}")
    rng = np.random.default_rng(seed)
    out = []
    for i, r in enumerate(rates):
        t = i * step_s
        while r > 0:
            t += rng.exponential(1.0 / r)
            if t >= (i + 1) * step_s:
                break
            out.append(Arrival(t))
    return out
