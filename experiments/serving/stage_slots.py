"""Where should a call wait for a busy stage: at a replica, behind the call it runs, or at the
caller until a replica has room?

Runs `agentc bench serve`'s validation (the emulated staged RAG service on Ray Serve under
300 s of the code trace, and the simulator on the same arrivals) once per number of calls a
stage replica takes at once (`agentc serve --staged --stage-slots N`), side by side.

    python experiments/serving/stage_slots.py [--slots 2 1] [--queue] [--start-s 0.87]

`--queue` adds the service that queues calls per stage at its ingress (`--stage-queue`,
agentc/serving/stage_gate.py), simulated as one call per replica with a stage queue.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from agentc.bench.serve_bench import validate


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--slots", type=int, nargs="*", default=[2, 1])
    p.add_argument("--queue", action="store_true", help="also the service with a queue per stage at its ingress")
    p.add_argument("--start-s", type=float, default=0.87, help="replica start (bench serve measures it)")
    args = p.parse_args()
    rows = {}
    for n in args.slots:
        out = Path(tempfile.mkdtemp(prefix=f"agentc-slots-{n}-"))
        rows[str(n)] = validate(args.start_s, out, slots=n)
    if args.queue:
        rows["queue"] = validate(args.start_s, Path(tempfile.mkdtemp(prefix="agentc-queue-")), queue=True)
    keys = ("p50_ms", "p95_ms", "p99_ms", "slo_pct", "cost_usd", "send_lag_p99_ms", "valid")
    for n, r in rows.items():
        print(f"{'' if n == 'queue' else 'slots='}{n} hop_ms={r['hop_ms']}")
        for side in ("emulate", "simulate"):
            print(f"  {side:<9} " + " ".join(f"{k}={r[side].get(k)}" for k in keys))
        print(f"  sim/emulate p50={r['sim_over_emulate_p50_ms']} p95={r['sim_over_emulate_p95_ms']}")
    print(json.dumps({n: {k: r[k] for k in ("emulate", "simulate")} for n, r in rows.items()}, default=str))


if __name__ == "__main__":
    main()
