"""A timeline of operator executions, written as a Chrome/Perfetto trace: one track per
device (and one for the host), one slice per operator, tagged with its request; warnings
(a prompt cut to the model's budget) are instant events on the track of the node.

A session lives as long as its server, so the trace is a ring: the newest `max_events`
events (DEFAULT_EVENTS unless set, ~1.3 MB of tuples), older ones counted in `dropped`.
`max_events=None` keeps everything (one `agentc run`).
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque

DEFAULT_EVENTS = 10_000


class Trace:
    def __init__(self, max_events: int | None = DEFAULT_EVENTS):
        if max_events is not None and max_events < 1:
            raise ValueError(f"trace max_events must be >= 1 or None, got {max_events}")
        self.events: deque[tuple] = deque(maxlen=max_events)
        self.dropped = 0
        self.added = 0  # events ever added: a mark for `since`
        self._lock = threading.Lock()
        self.t0 = time.perf_counter()

    def add(self, track: str, name: str, request: int, start: float, end: float,
            note: str | None = None) -> None:
        """One slice; with `note`, an instant event (start == end) carrying that text."""
        with self._lock:
            if len(self.events) == self.events.maxlen:
                self.dropped += 1
            self.events.append((track, name, request, start, end, note))
            self.added += 1

    def since(self, mark: int) -> list[tuple]:
        """The events added after `added` was `mark` (those still in the ring)."""
        with self._lock:
            n = min(self.added - mark, len(self.events))
            return list(self.events)[len(self.events) - n:] if n > 0 else []

    def to_chrome(self) -> dict:
        with self._lock:
            events = list(self.events)
        tracks = sorted({e[0] for e in events}, key=lambda t: (t == "host", t))
        tid = {t: i + 1 for i, t in enumerate(tracks)}
        out = [{"name": "thread_name", "ph": "M", "pid": 1, "tid": tid[t], "args": {"name": t}} for t in tracks]
        for track, name, req, start, end, note in events:
            ev = {"name": name, "pid": 1, "tid": tid[track], "ts": (start - self.t0) * 1e6,
                  "args": {"request": req}}
            if note is None:
                ev.update(ph="X", dur=max((end - start) * 1e6, 0.01))
            else:
                ev.update(ph="i", s="t")
                ev["args"]["warning"] = note
            out.append(ev)
        meta = {"dropped_events": self.dropped} if self.dropped else {}
        return {"traceEvents": out, "displayTimeUnit": "ms", "metadata": meta}

    def write(self, path) -> None:
        with open(path, "w") as f:
            json.dump(self.to_chrome(), f)

    def overlaps(self, a: str, b: str, request: int | None = None) -> bool:
        """Did any operator on track a run at the same time as one on track b?"""
        with self._lock:
            events = [e for e in self.events if e[5] is None]
        ea = [e for e in events if e[0] == a and (request is None or e[2] == request)]
        eb = [e for e in events if e[0] == b and (request is None or e[2] == request)]
        return any(x[3] < y[4] and y[3] < x[4] for x in ea for y in eb)
