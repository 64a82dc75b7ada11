"""Named benchmarks: `agentc bench <name>`, one result schema for all of them.

A result is one JSON object:

    {"benchmark": name, "schema": 1, "started": ISO time, "seconds": wall time,
     "host": {"cpus", "load_before", "load_after" (1/5/15-minute load averages)},
     "params": what the run was asked to do, "results": what it measured,
     "summary": {key: number}, the numbers its last lines print as key=value}

written to `docs/results/<name>/summary.json` (or --out DIR), next to any plot the
benchmark draws. Benchmarks print ratios against the anchor they measure side by side in
the same run; this machine is shared, so the load average is recorded around each run.
"""

from __future__ import annotations

import datetime
import json
import os
import sys
import time
from pathlib import Path

RESULTS = Path("docs/results")


def _load() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def run_named(name: str, args) -> int:
    from agentc.bench import (
        batching,
        index_search,
        model_import,
        place_scale,
        ray_hops,
        serve_bench,
        soak,
        verify_load,
    )

    benches = {"session-soak": soak.run, "verify-load": verify_load.run, "place-scale": place_scale.run,
               "ray": ray_hops.run, "serve": serve_bench.run,
               "batching": batching.run, "import": model_import.run,
               "index": index_search.run}
    out = Path(args.out) if args.out else RESULTS / name
    out.mkdir(parents=True, exist_ok=True)
    with Recording(name, out) as rec:
        rec.params, rec.results, rec.summary = benches[name](args, out)
    return 0


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
