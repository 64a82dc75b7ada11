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

from pathlib import Path

RESULTS = Path("docs/results")


def run_named(name: str, args) -> int:
    from agentc.bench import (
        batching,
        decode,
        e2e,
        index_search,
        model_import,
        place_scale,
        ray_hops,
        serve_bench,
        serve_frontier,
        soak,
        verify_load,
    )

    benches = {"session-soak": soak.run, "verify-load": verify_load.run, "place-scale": place_scale.run,
               "ray": ray_hops.run, "serve": serve_bench.run, "serve-frontier": serve_frontier.run,
               "batching": batching.run, "import": model_import.run,
               "index": index_search.run, "decode": decode.run, "e2e": e2e.run}
    from agentc.bench.record import Recording

    out = Path(args.out) if args.out else RESULTS / name
    out.mkdir(parents=True, exist_ok=True)
    with Recording(name, out) as rec:
        rec.params, rec.results, rec.summary = benches[name](args, out)
    return 0
