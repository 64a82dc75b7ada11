"""`agentc compile | run | devices | schedule`: the command-line front of the pipeline.

User mistakes print one line `agentc: error: ...` naming the node, file:line or flag at
fault, and exit 2 (1 for a failed request); they never print a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys


def _compile(args) -> int:
    from agentc.compiler import CompileOptions, compile_file

    opts = CompileOptions(devices=_devices_arg(args), cluster=args.cluster, sla_ms=args.sla_ms,
                          strict_sla=args.strict_sla, objective=args.objective, emit=args.emit,
                          time_limit_s=args.time_limit, agent=args.agent, arrival_rate=args.arrival_rate)
    result = compile_file(args.graph, args.output, opts)
    if isinstance(result, str):
        print(result)
    else:
        print(result.table())
        print(f"build: {result.build_dir}")
    return 0


def _devices_arg(args) -> list[str] | None:
    return [d.strip() for d in args.devices.split(",") if d.strip()] if args.devices else None


def _place(args) -> int:
    from agentc.compiler import place_file

    if args.devices and args.cluster:
        raise SystemExit("agentc: error: --devices and --cluster: give one of them, not both")
    placement = place_file(args.graph, args.cluster or _devices_arg(args), args.sla_ms, args.objective,
                           args.time_limit, args.arrival_rate, args.agent, args.strict_sla, quiet=False)
    print(json.dumps(placement.to_json()) if args.json else placement.table())
    return 0


def _run(args) -> int:
    from agentc.runtime.session import Session

    inputs = {}
    for item in args.input:
        if "=" not in item:
            raise SystemExit(f"agentc: error: --input expects NAME=VALUE, got {item!r}")
        k, v = item.split("=", 1)
        inputs[k] = v
    with Session(args.build) as s:
        for _ in range(args.repeat):
            result = s.run(inputs)
        print(json.dumps({"outputs": result["outputs"]}, ensure_ascii=False, indent=1))
        if args.trace:
            s.trace.write(args.trace)
            print(f"trace: {args.trace}", file=sys.stderr)
    return 0


def _devices(args) -> int:
    from agentc.runtime.devices import KINDS

    print(f"{'device':<8} {'usable':<7} {'iree target':<14} {'hal driver':<11}")
    for name, kind in KINDS.items():
        print(f"{name:<8} {'yes' if kind.available() else 'no':<7} {kind.target:<14} {kind.driver:<11}")
    return 0


def _placement_args(p: argparse.ArgumentParser, objective: str) -> None:
    p.add_argument("graph")
    p.add_argument("--devices", help="comma-separated: cpu,vulkan,cuda (default: all usable here)")
    p.add_argument("--cluster", help="cluster.yaml: devices, counts, costs, links (see agentc/cluster.py)")
    p.add_argument("--sla-ms", type=float, help="end-to-end latency target (overrides the agent's)")
    p.add_argument("--strict-sla", action="store_true", help="fail if the SLA is unreachable")
    p.add_argument("--objective", choices=("latency", "tco"), default=objective,
                   help=f"minimise latency, or cost per request within the SLA (default {objective})")
    p.add_argument("--arrival-rate", type=float, help="requests/s: throughput-mode TCO (pipelined requests)")
    p.add_argument("--time-limit", type=float, default=5.0, help="placement solver time limit (s)")
    p.add_argument("--agent", help="which @agentc.agent to use when the file has several")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="agentc", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("compile", help="compile graph.py into a build directory")
    c.add_argument("-o", "--output", help="build directory (default build/<graph name>)")
    c.add_argument("--emit", help="stop after a stage and print it: agent|operators|plan")
    _placement_args(c, objective="latency")
    c.set_defaults(func=_compile)
    pl = sub.add_parser("place", help="place graph.py's operators on a cluster (no compile)")
    pl.add_argument("--json", action="store_true", help="print the placement as one JSON object")
    _placement_args(pl, objective="tco")
    pl.set_defaults(func=_place)
    r = sub.add_parser("run", help="run a build")
    r.add_argument("build")
    r.add_argument("--input", action="append", default=[], metavar="NAME=VALUE")
    r.add_argument("--trace", help="write a Chrome/Perfetto trace here")
    r.add_argument("--repeat", type=int, default=1, help=argparse.SUPPRESS)
    r.set_defaults(func=_run)
    d = sub.add_parser("devices", help="list this machine's devices and IREE targets")
    d.set_defaults(func=_devices)
    from agentc.bench import cli as bench_cli
    from agentc.scheduler import cli as sched_cli

    sched_cli.register(sub)
    bench_cli.register(sub)
    return p


def main(argv=None) -> int:
    from agentc.cost_models.catalog import CatalogError
    from agentc.frontend.graph import AgentError
    from agentc.iree_compile import IreeCompileError
    from agentc.runtime.session import RunError
    from agentc.scheduler.taskgraph import ScheduleError

    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except RunError as e:
        print(f"agentc: error: {e}", file=sys.stderr)
        return 1
    except (AgentError, CatalogError, IreeCompileError, ScheduleError, OSError) as e:
        print(f"agentc: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
