"""`agentc schedule`: schedule a research task graph from the command line.

    agentc schedule --dag FILE.json --algo heft|peft|cpsat|... [--time-limit S] [--json]
        [--objective latency|tco] [--sla S] [--arrival-rate R]
    agentc schedule --stg FILE.stg --processors P --algo ...

--objective latency (default) minimises the makespan; an --sla is then only checked.
--objective tco minimises the cost per request subject to makespan <= --sla (required):
each processor's cost_per_s x its busy time, plus its reserve_cost once if the placement
uses it; with --arrival-rate R (requests/s) every used processor is paid all the time
(cost_per_s / R per request) and must keep up (busy time x R <= capacity). Prices come
from the JSON graph's processors, optional fields next to the name:
    "processors": [{"name": "gpu", "cost_per_s": 0.0011, "reserve_cost": 0.002}, "cpu"]
(both default to 0; an STG graph has no prices, so every cost is 0 there).

The main CLI calls `register(subparsers)`; until it does, run it as
`python -m agentc.scheduler.cli schedule ...`. Human output is a table and a summary
(with cost and per-processor busy time and utilisation); with --json the last line
printed is one JSON object (`Schedule.to_json`: makespan, cost, utilisation, busy_time,
sla_met, ...). A bad input prints one line, `agentc schedule: error: ...`, and exits with
status 2; an SLA that cannot be met does too, followed by the explanation (best latency,
lower bound, binding resource, critical path) on the lines after it.
"""

from __future__ import annotations

import argparse
import json
import sys

from agentc.scheduler.taskgraph import ALGORITHMS, OBJECTIVES, Schedule, ScheduleError

PROG = "agentc schedule"


def register(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "schedule",
        help="place and schedule a task graph (HEFT JSON or Kasahara STG)",
        description="Place and schedule a task graph and report the makespan and its bound.",
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--dag", metavar="FILE.json", help="HEFT-style JSON task graph")
    src.add_argument("--stg", metavar="FILE.stg", help="Kasahara STG task graph")
    p.add_argument("--processors", type=int, metavar="P", help="identical processors (--stg)")
    p.add_argument("--algo", choices=ALGORITHMS, default="cpsat", help="default: cpsat")
    p.add_argument(
        "--time-limit",
        type=float,
        default=10.0,
        metavar="S",
        help="CP-SAT time limit in seconds (default 10)",
    )
    p.add_argument("--workers", type=int, default=2, help="CP-SAT workers (default 2)")
    p.add_argument(
        "--objective",
        choices=OBJECTIVES,
        default="latency",
        help="minimise makespan (default) or cost per request (tco, needs --sla)",
    )
    p.add_argument("--sla", type=float, metavar="S", help="latency limit (makespan)")
    p.add_argument(
        "--arrival-rate",
        type=float,
        metavar="R",
        help="requests per second (tco): processors are reserved and must keep up",
    )
    p.add_argument("--json", action="store_true", help="end with one JSON line")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    # Solver imports (OR-Tools) wait until a schedule is asked for: every other agentc
    # command builds this parser, and the runtime must start without them.
    from agentc.scheduler.explain import SlaError

    try:
        sched = _schedule(args)
    except SlaError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        print("\n".join(str(e.report).splitlines()[2:]), file=sys.stderr)
        return 2
    except (ScheduleError, OSError) as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(sched.to_json()))
    else:
        print(format_table(sched))
    return 0


def _schedule(args: argparse.Namespace) -> Schedule:
    from agentc.scheduler.formats import read_dag_json, read_stg
    from agentc.scheduler.solve import solve

    if args.time_limit <= 0:
        raise ScheduleError(f"--time-limit must be > 0, got {args.time_limit}")
    if args.workers < 1:
        raise ScheduleError(f"--workers must be >= 1, got {args.workers}")
    if args.stg is not None:
        if args.processors is None:
            raise ScheduleError("--stg needs --processors P")
        tg = read_stg(args.stg, args.processors)
    else:
        if args.processors is not None:
            raise ScheduleError("--processors applies only to --stg (a JSON graph names its own)")
        tg = read_dag_json(args.dag)
    return solve(
        tg,
        args.algo,
        time_limit_s=args.time_limit,
        workers=args.workers,
        objective=args.objective,
        sla=args.sla,
        arrival_rate=args.arrival_rate,
    )


def format_table(sched: Schedule) -> str:
    rows = sorted(sched.assignment.items(), key=lambda kv: (kv[1].start, kv[1].processor, kv[0]))
    width = max([4] + [len(t) for t in sched.assignment])
    pwidth = max([9] + [len(s.processor) for s in sched.assignment.values()])
    lines = [f"{'task':<{width}}  {'processor':<{pwidth}}  {'start':>10}  {'end':>10}"]
    for t, s in rows:
        lines.append(f"{t:<{width}}  {s.processor:<{pwidth}}  {s.start:>10g}  {s.end:>10g}")
    lines += [
        "",
        f"algorithm:   {sched.algorithm}",
        f"objective:   {sched.objective}",
        f"makespan:    {sched.makespan:g}",
    ]
    if sched.sla is not None:
        lines.append(f"sla:         {sched.sla:g} ({'met' if sched.sla_met else 'missed'})")
    lines += [
        f"cost:        {sched.cost:g} per request",
        f"status:      {sched.status}",
        f"lower bound: {sched.lower_bound:g}",
        f"gap:         {100 * sched.gap:.1f}%",
        f"solve time:  {sched.solve_time_s:.3f} s",
    ]
    if sched.busy_time:
        lines.append("busy / utilisation:")
        for p, busy in sched.busy_time.items():
            lines.append(f"  {p:<{pwidth}}  {busy:>10g}  {100 * sched.utilisation[p]:>5.1f}%")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="agentc")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
