"""Scaling of the exact scheduler on random layered DAGs, side by side with HEFT.

    PYTHONPATH=. python experiments/scheduling/scaling_bench.py [--sizes 10,100,1000] [--procs 2,4,8,16]
        [--time-limit S] [--chain L] [--seed N] [--tco-slack X] [--out build/results]

Graphs look like agent operator graphs: layers of independent chains (mean length
--chain) with a few cross edges, a tenth of the chains host-only (tokenizers, tool
calls), the rest run on any processor. Processors: one host CPU pool, the rest
accelerators of mixed speed; host-side processors share memory, accelerators pay transfers.
All times are integers, so CP-SAT works in exact ticks.

For each (tasks, processors): HEFT and the best baseline, then `solve(algo="cpsat")`
(coarsening above 100 tasks). The time limit defaults to 1 s when the graph has at most
100 placement units after coarsening and 10 s otherwise: the goals are <= 1 s for
<= 100 units, <= 10 s for 1000 tasks, never worse than the best baseline. Prints a table,
writes scaling.csv / scaling.json and scaling.png (solve time and makespan/HEFT) to --out.

With --tco-slack X each graph is also solved for cost per request (objective "tco") under
an SLA of X times the CP-SAT makespan, and compared with the cheapest baseline or HEFT
schedule that meets it. Prices: host CPUs 1 per time unit; an accelerator s times faster
costs 1.5 s per time unit (dearer per unit of work) plus 5 per request if used at all.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import random
import sys
import time
from pathlib import Path

from agentc.scheduler.baselines import all_baselines
from agentc.scheduler.coarsen import coarsen_chains
from agentc.scheduler.cost import annotate, within_limits
from agentc.scheduler.heft import heft
from agentc.scheduler.solve import COARSEN_ABOVE, solve
from agentc.scheduler.taskgraph import Link, Processor, Task, TaskGraph, check_schedule


def processors(count: int, rng: random.Random) -> dict[str, tuple[Processor, float]]:
    """A host CPU pool (capacity 2) plus accelerators 2-8x faster; name -> (proc, speed)."""
    out = {"cpu0": (Processor("cpu0", capacity=2, memory_space="host", cost_per_s=1.0), 1.0)}
    for k in range(1, count):
        kind = rng.choice(["gpu", "npu", "cpu"])
        if kind == "cpu":
            out[f"cpu{k}"] = (Processor(f"cpu{k}", memory_space="host", cost_per_s=1.0), 1.0)
        else:
            speed = rng.choice([2.0, 4.0, 8.0])
            proc = Processor(f"{kind}{k}", cost_per_s=1.5 * speed, reserve_cost=5.0)
            out[f"{kind}{k}"] = (proc, speed)
    return out


def layered_dag(tasks: int, procs: int, seed: int, chain: float = 4.0) -> TaskGraph:
    rng = random.Random(seed)
    kinds = processors(procs, rng)
    host = [p for p, (proc, _) in kinds.items() if proc.memory_space == "host"]
    names: list[str] = []
    chains: list[list[str]] = []
    while len(names) < tasks:
        length = min(tasks - len(names), max(1, round(rng.expovariate(1 / chain))))
        chains.append([f"t{len(names) + i}" for i in range(length)])
        names += chains[-1]
    width = max(1, round(len(chains) ** 0.5))
    layers = [chains[i : i + width] for i in range(0, len(chains), width)]
    tg_tasks, edges = {}, {}
    for li, layer in enumerate(layers):
        for ch in layer:
            host_only = rng.random() < 0.1
            for t in ch:
                base = rng.randint(1, 20)
                allowed = host if host_only else list(kinds)
                cost = {p: max(1, round(base / kinds[p][1])) for p in allowed}
                tg_tasks[t] = Task(t, cost)
            for u, v in itertools.pairwise(ch):
                edges[u, v] = rng.randint(1, 10)
            if li > 0:
                feeders = layers[li - 1] + (layers[li - 2] if li > 1 else [])
                for src in rng.sample(feeders, min(len(feeders), rng.randint(1, 3))):
                    edges[src[-1], ch[0]] = rng.randint(1, 10)
    procs_ = {p: proc for p, (proc, _) in kinds.items()}
    links = {(p, q): Link(0, 1) for p in procs_ for q in procs_ if p < q}
    return TaskGraph(tg_tasks, procs_, edges, links)


def run_one(
    n: int,
    p: int,
    seed: int,
    chain: float,
    time_limit: float | None,
    tco_slack: float | None = None,
) -> dict:
    tg = layered_dag(n, p, seed, chain)
    units = len(coarsen_chains(tg).coarse.tasks) if n > COARSEN_ABOVE else n
    limit = time_limit if time_limit is not None else (1.0 if units <= 100 else 10.0)
    t0 = time.perf_counter()
    h = heft(tg)
    heft_s = time.perf_counter() - t0
    base = min(all_baselines(tg), key=lambda s: s.makespan)
    s = solve(tg, "cpsat", time_limit_s=limit, workers=2)
    check_schedule(tg, s)
    row = {
        "tasks": n,
        "edges": len(tg.edges),
        "procs": p,
        "units": units,
        "limit_s": limit,
        "heft": h.makespan,
        "heft_s": round(heft_s, 3),
        "best_baseline": base.makespan,
        "baseline_algo": base.algorithm,
        "cpsat": s.makespan,
        "cpsat_algo": s.algorithm,
        "status": s.status,
        "lower_bound": s.lower_bound,
        "gap": round(s.gap, 4),
        "solve_s": round(s.solve_time_s, 2),
        "ratio_vs_heft": round(s.makespan / h.makespan, 4),
        "not_worse_than_baseline": s.makespan <= base.makespan + 1e-9,
    }
    if tco_slack is not None:
        row.update(run_tco(tg, h, tco_slack * s.makespan, limit))
    return row


def run_tco(tg: TaskGraph, h, sla: float, limit: float) -> dict:
    pool = [*all_baselines(tg), h]
    for b in pool:
        annotate(tg, b, sla=sla)
    cheapest = min((b.cost for b in pool if within_limits(b, sla, None)), default=float("inf"))
    t = solve(tg, "cpsat", time_limit_s=limit, workers=2, objective="tco", sla=sla)
    check_schedule(tg, t)
    return {
        "sla": sla,
        "tco_baseline": round(cheapest, 2),
        "tco_cost": round(t.cost, 2),
        "tco_status": t.status,
        "tco_gap": round(t.gap, 4),
        "tco_s": round(t.solve_time_s, 2),
        "tco_not_worse": t.cost <= cheapest + 1e-9,
    }


def plot(rows: list[dict], path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    for p in sorted({r["procs"] for r in rows}):
        sub = sorted((r for r in rows if r["procs"] == p), key=lambda r: r["tasks"])
        ax1.plot([r["tasks"] for r in sub], [r["solve_s"] for r in sub], "o-", label=f"{p} procs")
        ax2.plot(
            [r["tasks"] for r in sub], [r["ratio_vs_heft"] for r in sub], "o-", label=f"{p} procs"
        )
    ax1.set(
        xscale="log",
        yscale="log",
        xlabel="tasks",
        ylabel="solve time (s)",
        title="solve(algo='cpsat') time incl. heuristics",
    )
    ax2.set(
        xscale="log",
        xlabel="tasks",
        ylabel="makespan / HEFT makespan",
        title="CP-SAT vs HEFT (lower is better)",
    )
    ax2.axhline(1.0, color="grey", lw=0.8)
    for ax in (ax1, ax2):
        ax.legend()
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return True


COLUMNS = [
    ("tasks", 6),
    ("edges", 6),
    ("procs", 5),
    ("units", 6),
    ("limit_s", 7),
    ("heft", 7),
    ("best_baseline", 13),
    ("cpsat", 7),
    ("status", 9),
    ("lower_bound", 11),
    ("gap", 7),
    ("solve_s", 7),
    ("ratio_vs_heft", 13),
]
TCO_COLUMNS = [("tco_baseline", 12), ("tco_cost", 9), ("tco_status", 10), ("tco_gap", 7)]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10,20,50,100,200,500,1000,2000")
    ap.add_argument("--procs", default="2,4,8,16")
    ap.add_argument("--time-limit", type=float, default=None, help="default: 1 s / 10 s by size")
    ap.add_argument("--chain", type=float, default=4.0, help="mean chain length")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--tco-slack",
        type=float,
        default=None,
        metavar="X",
        help="also minimise cost per request under an SLA of X x the CP-SAT makespan",
    )
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results")
    args = ap.parse_args(argv)
    sizes = [int(x) for x in args.sizes.split(",")]
    procs = [int(x) for x in args.procs.split(",")]
    args.out.mkdir(parents=True, exist_ok=True)
    columns = COLUMNS + (TCO_COLUMNS if args.tco_slack is not None else [])
    print("  ".join(f"{c:>{w}}" for c, w in columns), flush=True)
    rows = []
    for n in sizes:
        for p in procs:
            seed = args.seed + n * 100 + p
            r = run_one(n, p, seed, args.chain, args.time_limit, args.tco_slack)
            rows.append(r)
            print("  ".join(f"{r[c]!s:>{w}}" for c, w in columns), flush=True)
    with open(args.out / "scaling.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    (args.out / "scaling.json").write_text(json.dumps(rows, indent=1))
    plotted = plot(rows, args.out / "scaling.png")
    worse = [r for r in rows if not r["not_worse_than_baseline"]]
    print(
        f"\nwrote {args.out}/scaling.csv, scaling.json"
        + (", scaling.png" if plotted else " (no matplotlib: no plot)")
    )
    print(f"worse than best baseline: {len(worse)} of {len(rows)}")
    if args.tco_slack is not None:
        dearer = [r for r in rows if not r["tco_not_worse"]]
        print(f"tco dearer than the cheapest baseline within the SLA: {len(dearer)} of {len(rows)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
