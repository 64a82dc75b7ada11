"""A timeline of operator executions, written as a Chrome/Perfetto trace: one track per
device (and one for the host), one slice per operator, tagged with its request."""

from __future__ import annotations

import json
import threading
import time


class Trace:
    def __init__(self):
        self.events: list[tuple[str, str, int, float, float]] = []
        self._lock = threading.Lock()
        self.t0 = time.perf_counter()

    def add(self, track: str, name: str, request: int, start: float, end: float) -> None:
        with self._lock:
            self.events.append((track, name, request, start, end))

    def to_chrome(self) -> dict:
        tracks = sorted({e[0] for e in self.events}, key=lambda t: (t == "host", t))
        tid = {t: i + 1 for i, t in enumerate(tracks)}
        out = [{"name": "thread_name", "ph": "M", "pid": 1, "tid": tid[t], "args": {"name": t}} for t in tracks]
        for track, name, req, start, end in self.events:
            out.append({"name": name, "ph": "X", "pid": 1, "tid": tid[track], "ts": (start - self.t0) * 1e6,
                        "dur": max((end - start) * 1e6, 0.01), "args": {"request": req}})
        return {"traceEvents": out, "displayTimeUnit": "ms"}

    def write(self, path) -> None:
        with open(path, "w") as f:
            json.dump(self.to_chrome(), f)

    def overlaps(self, a: str, b: str, request: int | None = None) -> bool:
        """Did any operator on track a run at the same time as one on track b?"""
        ea = [e for e in self.events if e[0] == a and (request is None or e[2] == request)]
        eb = [e for e in self.events if e[0] == b and (request is None or e[2] == request)]
        return any(x[3] < y[4] and y[3] < x[4] for x in ea for y in eb)
