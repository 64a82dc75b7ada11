"""CP-SAT and HEFT on the Kasahara STG set against the public table of optimal lengths.

    PYTHONPATH=. python experiments/scheduling/stg_bench.py [--time-limit S] [--quick] [--out build/results]

Graphs: ../shared/benchmarks/scheduling/stg/{50,100}/rand0000-0009.stg on 2, 4, 8 and 16
identical processors (no communication). The public table
(stg_optimal_all_thelonesailor_MSP.csv) is known to hold some entries that are too low, so
each row is flagged:
  TABLE LOW    we proved an optimum above the table entry (the entry is wrong)
  BELOW TABLE  our schedule is shorter than the entry (the entry is not optimal; or a bug)
  open         the table entry lies inside our [lower bound, makespan) interval: unproven
Prints one row per instance as it finishes and a summary; writes stg.csv and stg.json to
--out (default build/results/, created at run time).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

from agentc.scheduler.formats import read_stg
from agentc.scheduler.heft import heft
from agentc.scheduler.solve import solve
from agentc.scheduler.taskgraph import check_schedule

REPO = Path(__file__).resolve().parents[2]
STG = REPO.parent / "shared" / "benchmarks" / "scheduling" / "stg"
TABLE = STG / "stg_optimal_all_thelonesailor_MSP.csv"


def public_table() -> dict[tuple[int, str, int], int]:
    out = {}
    with open(TABLE) as f:
        for row in csv.DictReader(f):
            out[int(row["size"]), row["graph"], int(row["procs"])] = int(row["opt_len"])
    return out


def flag(makespan: float, bound: float, status: str, table: int | None) -> str:
    if table is None:
        return "no entry"
    if status == "optimal" and makespan > table:
        return "TABLE LOW"
    if makespan < table:
        return "BELOW TABLE"
    if makespan == table:
        return "match" if status == "optimal" else "match (unproven)"
    return "open" if bound <= table else "TABLE LOW"


def run_one(size: int, graph: str, procs: int, time_limit: float, table) -> dict:
    tg = read_stg(STG / str(size) / graph, procs)
    h = heft(tg)
    s = solve(tg, "cpsat", time_limit_s=time_limit, workers=2)
    check_schedule(tg, s)
    ref = table.get((size, graph, procs))
    return {
        "size": size,
        "graph": graph,
        "procs": procs,
        "table": ref,
        "heft": h.makespan,
        "cpsat": s.makespan,
        "status": s.status,
        "lower_bound": s.lower_bound,
        "gap": round(s.gap, 4),
        "solve_s": round(s.solve_time_s, 2),
        "flag": flag(s.makespan, s.lower_bound, s.status, ref),
    }


COLUMNS = [
    ("size", 4),
    ("graph", 12),
    ("procs", 5),
    ("table", 5),
    ("heft", 6),
    ("cpsat", 6),
    ("status", 8),
    ("lower_bound", 11),
    ("solve_s", 7),
    ("flag", 16),
]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--time-limit", type=float, default=10.0, help="per instance (default 10)")
    ap.add_argument("--quick", action="store_true", help="50-task graphs 0-4 on 2 and 8 procs")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results")
    args = ap.parse_args(argv)
    if not STG.is_dir():
        print(f"stg_bench: error: benchmarks not found at {STG}", file=sys.stderr)
        return 2
    table = public_table()
    if args.quick:
        cases = [(50, f"rand000{i}.stg", p) for p in (2, 8) for i in range(5)]
    else:
        cases = [
            (n, f"rand000{i}.stg", p) for n in (50, 100) for p in (2, 4, 8, 16) for i in range(10)
        ]
    args.out.mkdir(parents=True, exist_ok=True)
    print(f"{'':>7}  " + "  ".join(f"{c:>{w}}" for c, w in COLUMNS), flush=True)
    rows, t0 = [], time.perf_counter()
    for k, case in enumerate(cases, 1):
        r = run_one(*case, args.time_limit, table)
        rows.append(r)
        line = "  ".join(f"{r[c]!s:>{w}}" for c, w in COLUMNS)
        print(f"[{k:>2}/{len(cases)}]  {line}", flush=True)
    with open(args.out / "stg.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    (args.out / "stg.json").write_text(json.dumps(rows, indent=1))

    def count(pred):
        return sum(1 for r in rows if pred(r))

    print(
        f"\n{len(rows)} instances in {time.perf_counter() - t0:.0f} s, limit {args.time_limit} s each"
    )
    print(f"  proved optimal:              {count(lambda r: r['status'] == 'optimal')}")
    print(f"  equal to the table:          {count(lambda r: r['cpsat'] == r['table'])}")
    print(f"  table entry provably too low: {count(lambda r: r['flag'] == 'TABLE LOW')}")
    print(f"  shorter than the table:      {count(lambda r: r['flag'] == 'BELOW TABLE')}")
    print(f"  open (table inside our gap): {count(lambda r: r['flag'] == 'open')}")
    print(f"  HEFT equal to the table:     {count(lambda r: r['heft'] == r['table'])}")
    heft_excess = [r["heft"] / r["table"] - 1 for r in rows if r["table"]]
    print(f"  HEFT above the table, mean:  {100 * sum(heft_excess) / len(heft_excess):.2f}%")
    for r in rows:
        if r["flag"] in ("TABLE LOW", "BELOW TABLE"):
            print(
                f"  {r['flag']}: {r['size']}/{r['graph']} on {r['procs']}: table {r['table']}, "
                f"ours {r['cpsat']:g} ({r['status']}, bound {r['lower_bound']:g})"
            )
    print(f"wrote {args.out}/stg.csv, stg.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
