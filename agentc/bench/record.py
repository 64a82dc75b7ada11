"""A named benchmark's result (the schema in agentc/bench/named.py): timed, with the load
average around it, written to `out/summary.json`, its summary printed as key=value lines.
Benchmarks measured on another machine (agentc/bench/*_run.py) write theirs the same way."""

from __future__ import annotations

import datetime
import json
import os
import sys
import time
from pathlib import Path


def _load() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []



class Recording:
    """`with Recording(name, out) as r: r.params, r.results, r.summary = ...` times the
    block, records the load average around it, writes `out/summary.json` in the schema
    above and prints the summary's key=value lines (also for benchmarks measured on
    another machine, agentc/bench/*_run.py)."""

    def __init__(self, name: str, out: Path):
        self.name, self.out = name, Path(out)
        self.params: dict = {}
        self.results: object = []
        self.summary: dict = {}

    def __enter__(self):
        self.started = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
        self.load_before, self.t0 = _load(), time.perf_counter()
        return self

    def __exit__(self, kind, *_):
        if kind is not None:
            return False
        record = {"benchmark": self.name, "schema": 1, "started": self.started,
                  "seconds": round(time.perf_counter() - self.t0, 1),
                  "host": {"cpus": os.cpu_count(), "load_before": self.load_before, "load_after": _load()},
                  "params": self.params, "results": self.results, "summary": self.summary}
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / "summary.json").write_text(json.dumps(record, indent=1) + "\n")
        print(f"[bench] summary: {self.out / 'summary.json'}", file=sys.stderr)
        for k, v in self.summary.items():
            print(f"{k}={v}")
        return False
