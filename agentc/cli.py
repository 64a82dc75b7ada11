"""`agentc compile | run | devices | models | schedule`: the command-line front of the pipeline.

User mistakes print one line `agentc: error: ...` naming the node, file:line or flag at
fault, and exit 2 (1 for a failed request); they never print a traceback. Ctrl-C prints
one line and exits 130 (temporary files are removed where they are written). Anything else
is a bug in agentc: one line saying so, exit 70, the traceback with AGENTC_DEBUG=1.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import traceback
from pathlib import Path


class UsageError(Exception):
    """A flag's value is wrong: exit 2, the message names the flag."""


def _compile(args) -> int:
    from agentc.compiler import CompileOptions, compile_file

    opts = CompileOptions(devices=_devices_arg(args), cluster=args.cluster, sla_ms=args.sla_ms,
                          strict_sla=args.strict_sla, objective=args.objective, emit=args.emit,
                          time_limit_s=args.time_limit, agent=args.agent, arrival_rate=args.arrival_rate,
                          max_nodes=args.max_nodes)
    result = compile_file(args.graph, args.output, opts)
    if isinstance(result, str):
        print(result)
    else:
        print(result.table())
        print(f"build: {result.build_dir}")
    return 0


def _models(args) -> int:
    from agentc.models import listing

    rows = listing.available()
    print(json.dumps(rows) if args.json else listing.table(rows))
    return 0


def _devices_arg(args) -> list[str] | None:
    if args.devices is None:
        return None
    names = [d.strip() for d in args.devices.split(",")]
    if not all(names):
        raise UsageError(f"--devices: empty device name in {args.devices!r} (e.g. --devices cpu,vulkan)")
    return names


def _place(args) -> int:
    from agentc.compiler import place_file

    if args.devices is not None and args.cluster:
        raise UsageError("--devices and --cluster: give one of them, not both")
    placement = place_file(args.graph, args.cluster or _devices_arg(args), args.sla_ms, args.objective,
                           args.time_limit, args.arrival_rate, args.agent, args.strict_sla, quiet=False,
                           max_nodes=args.max_nodes)
    print(json.dumps(placement.to_json()) if args.json else placement.table())
    return 0


def _inputs(items: list[str]) -> dict[str, str]:
    inputs = {}
    for item in items:
        if "=" not in item:
            raise UsageError(f"--input expects NAME=VALUE, got {item!r}")
        k, v = item.split("=", 1)
        if k in inputs:
            raise UsageError(f"--input {k}: given twice")
        inputs[k] = v
    return inputs


def _run(args) -> int:
    from agentc.runtime.session import Session

    inputs = _inputs(args.input)
    if args.repeat < 1:
        raise UsageError(f"--repeat must be >= 1, got {args.repeat}")
    with Session(args.build, verify=not args.no_verify, trace_events=None, ray=args.ray) as s:
        for _ in range(args.repeat):
            result = s.run(inputs)
        print(json.dumps({"outputs": result["outputs"]}, ensure_ascii=False, indent=1))
        if args.trace:
            s.trace.write(args.trace)
            print(f"trace: {args.trace}", file=sys.stderr)
        if args.explain:
            from agentc.runtime.explain import by_request, explain

            last = by_request(s.trace.events)[-1:]
            print(explain(s.plan["ops"], s.plan["placement"]["predicted_ms"], last).table(), file=sys.stderr)
    return 0


def _calibrate(args) -> int:
    from agentc.cost.calibrate import calibrate

    if args.requests < 1:
        raise UsageError(f"--requests must be >= 1, got {args.requests}")
    done = calibrate(args.build, _inputs(args.input), args.requests)
    print(done["before"].table())
    print(f"recorded {done['kernels']} kernel(s) and {done['host']} host operation kind(s): compiles on this "
          f"machine now price them as measured (agentc cache clear forgets them)")
    return 0


def _serve(args) -> int:
    from agentc.serving.server import main

    return main(args)


def _cache(args) -> int:
    from agentc import store, store_maintenance

    if args.action == "verify":
        rep = store_maintenance.verify(full=args.full)
        for path in rep.corrupt:
            print(f"corrupt: {path} (evicted; the next compile rebuilds it)")
    elif args.action == "gc":
        rep = store_maintenance.gc(args.older_than)
    else:
        rep = store_maintenance.clear()
    print(f"{store.cache_dir()}: {rep.line()}")
    return 1 if rep.corrupt else 0


def _devices(args) -> int:
    from agentc.devices import KINDS

    if args.ray:
        from agentc.distributed.cli import devices_on_ray

        return devices_on_ray(args.ray)
    print(f"{'device':<8} {'usable':<7} {'iree target':<14} {'hal driver':<11}")
    for name, kind in KINDS.items():
        print(f"{name:<8} {'yes' if kind.available() else 'no':<7} {kind.target:<14} {kind.driver:<11}")
    return 0


def _placement_args(p: argparse.ArgumentParser, objective: str) -> None:
    p.add_argument("graph")
    p.add_argument("--devices", help="comma-separated: cpu,vulkan,cuda (default: all usable here)")
    p.add_argument("--cluster", help="cluster.yaml: devices, counts, costs, links (see agentc/placement/cluster.py)")
    p.add_argument("--sla-ms", type=_positive, help="end-to-end latency target (overrides the agent's)")
    p.add_argument("--strict-sla", action="store_true", help="fail if the SLA is unreachable")
    p.add_argument("--objective", choices=("latency", "tco"), default=objective,
                   help=f"minimise latency, or cost per request within the SLA (default {objective})")
    p.add_argument("--arrival-rate", type=_positive, help="requests/s: throughput-mode TCO (pipelined requests)")
    p.add_argument("--time-limit", type=_positive, default=5.0, help="placement solver time limit (s)")
    p.add_argument("--agent", help="which @agentc.agent to use when the file has several")
    p.add_argument("--max-nodes", type=_positive_int, default=None,
                   help="stop tracing graph.py past this many nodes (default 50000)")


def _positive(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not v > 0 or v == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number > 0, got {text!r}")
    return v


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {text!r}")
    return v


class _Parser(argparse.ArgumentParser):
    """Usage errors in one line, like every other agentc error (argparse prints the whole
    usage block first); `--help` still shows it."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def parser() -> argparse.ArgumentParser:
    p = _Parser(prog="agentc", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("compile", help="compile graph.py into a build directory")
    c.add_argument("-o", "--output", help="build directory (default build/<graph name>)")
    c.add_argument("--emit", help="stop after a stage and print it: agent|operators|plan|placed|devices")
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
    r.add_argument("--explain", action="store_true",
                   help="print each operator's predicted and measured time, and the request's")
    r.add_argument("--no-verify", action="store_true",
                   help="skip checking the build's files against its manifest")
    r.add_argument("--ray", metavar="ADDRESS",
                   help="run each device's share in a Ray actor on a node that has it (agentc ray up prints one)")
    r.set_defaults(func=_run)
    cb = sub.add_parser("calibrate", help="run a build here and price its operators as measured in later compiles")
    cb.add_argument("build")
    cb.add_argument("--input", action="append", default=[], metavar="NAME=VALUE")
    cb.add_argument("--requests", type=int, default=5, help="requests measured after one warm-up (default 5)")
    cb.set_defaults(func=_calibrate)
    sv = sub.add_parser("serve", help="serve a build over HTTP on Ray Serve")
    sv.add_argument("build")
    sv.add_argument("--ray", metavar="ADDRESS", help="a Ray cluster (default: a private one of this machine's devices)")
    sv.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    sv.add_argument("--port", type=_positive_int, default=8000)
    sv.add_argument("--api-key-file", help="requests need 'Authorization: Bearer <the file's key>'")
    sv.add_argument("--max-body-kb", type=_positive_int, default=1024, help="largest request body (413 beyond)")
    sv.add_argument("--replicas", type=_positive_int, default=1)
    sv.add_argument("--max-ongoing", type=_positive_int, default=8, help="requests a replica takes at once")
    sv.add_argument("--deadline-ms", type=_positive, help="admission control's deadline (default: the agent's SLA)")
    sv.add_argument("--admission-margin", type=_positive, default=0.5,
                    help="refuse (503) when the predicted completion passes the deadline by this fraction")
    sv.add_argument("--timeout-ms", type=_positive, help="answer 504 past this (default: 4x the deadline)")
    sv.add_argument("--autoscale", action="store_true",
                    help="replicas follow agentc's policy (arrival rate x service time, bursts, start time)")
    sv.add_argument("--min-replicas", type=int, default=1, help="with --autoscale (0: scale to zero)")
    sv.add_argument("--max-replicas", type=_positive_int, default=4, help="with --autoscale")
    sv.add_argument("--emulate", action="store_true",
                    help="replicas hold each request for the service time instead of computing (load tests)")
    sv.add_argument("--service-ms", type=_positive, help="with --emulate (default: the placement's prediction)")
    sv.add_argument("--start-s", type=float, help="with --emulate: replica start (default: measured here)")
    sv.add_argument("--staged", action="store_true",
                    help="a deployment per stage (model on a device type), scaled together by agentc; with --emulate, "
                         "BUILD may be a graph.py placed on --cluster")
    sv.add_argument("--cluster", help="with --staged and a graph.py: the cluster.yaml to place it on")
    sv.add_argument("--scaling", choices=("joint", "reactive", "static"), default="joint",
                    help="with --staged: stages scale together, each on its own arrivals, or not at all")
    sv.add_argument("--stage-replicas", help="with --staged: replicas per stage at the start (static: always), "
                                             "as JSON {stage: n} (default 1 each)")
    sv.add_argument("--sla-ms", type=_positive, help="with --staged: the SLA (default: the agent's)")
    sv.add_argument("--stage-slots", type=_positive_int, default=2,
                    help="with --staged: calls a stage replica takes at once (more wait at the ingress's router)")
    sv.add_argument("--stage-queue", action="store_true",
                    help="with --staged: calls wait at the ingress in a queue per stage, one per replica serving")
    sv.add_argument("--measured-service", action="store_true",
                    help="with --staged --emulate and a build: hold calls as long as they take here (timed at start)")
    sv.add_argument("--hold-s", type=float, default=600.0, help="with --staged: the scaler's burst memory")
    sv.add_argument("--target-utilisation", type=_positive, default=0.7, help="with --staged")
    sv.set_defaults(func=_serve)
    k = sub.add_parser("cache", help="verify, garbage-collect or clear the compile cache ($AGENTC_CACHE)")
    k.add_argument("action", choices=("verify", "gc", "clear"),
                   help="verify: hash every object, evict corrupt ones (exit 1 if any); gc: remove "
                        "what nothing refers to; clear: remove the whole cache")
    k.add_argument("--full", action="store_true", help="verify: hash every object, even unchanged ones")
    k.add_argument("--older-than", type=_positive, metavar="DAYS",
                   help="gc: also drop entries unused for DAYS")
    k.set_defaults(func=_cache)
    d = sub.add_parser("devices", help="list this machine's devices and IREE targets (or a Ray cluster's)")
    d.add_argument("--ray", metavar="ADDRESS", help="list the agentc devices of each node of this Ray cluster")
    d.set_defaults(func=_devices)
    m = sub.add_parser("models", help="list the models graph.py files can name, and where each comes from")
    m.add_argument("--json", action="store_true", help="one JSON list instead of a table")
    m.set_defaults(func=_models)
    from agentc.bench import cli as bench_cli
    from agentc.distributed import cli as ray_cli
    from agentc.scheduler import cli as sched_cli
    from agentc.serving import loadtest
    from agentc.study import cli as study_cli

    sched_cli.register(sub)
    bench_cli.register(sub)
    ray_cli.register(sub)
    loadtest.register(sub)
    study_cli.register(sub)
    return p


def main(argv=None) -> int:
    """Run a command; returns its exit status (argparse's own usage errors exit 2)."""
    try:
        return _dispatch(parser().parse_args(argv))
    except KeyboardInterrupt:
        print("agentc: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `agentc ... | head`: the reader left; say nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


def entry() -> None:
    """The `agentc` command: main(), then exit without heeding a Ctrl-C that comes after the
    work is done (Python would report it as a traceback during shutdown)."""
    code = main()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sys.exit(code)


def _dispatch(args) -> int:
    from agentc.build.iree_compile import IreeCompileError
    from agentc.cost.catalog import CatalogError
    from agentc.cpu_kernels.objects import KernelBuildError
    from agentc.distributed.connect import RayUnavailable
    from agentc.distributed.local_cluster import ClusterError
    from agentc.distributed.node_spec import NodeSpecError
    from agentc.frontend.graph import AgentError
    from agentc.runtime.host_ops import BuildError, InputError, RunError
    from agentc.scheduler.taskgraph import ScheduleError
    from agentc.serving.arrivals import ArrivalsError
    from agentc.store import StoreError

    try:
        return args.func(args)
    except BrokenPipeError:
        raise
    except (InputError, BuildError) as e:
        return _error(e, 2)
    except RunError as e:
        return _error(e, 1)
    except (UsageError, AgentError, CatalogError, IreeCompileError, ScheduleError, StoreError, RayUnavailable,
            ClusterError, NodeSpecError, ArrivalsError, KernelBuildError) as e:
        return _error(e, 2)
    except OSError as e:
        return _error(f"{e.filename}: {e.strerror}" if e.filename else e, 2)
    except KeyboardInterrupt:
        raise
    except Exception as e:  # a bug in agentc, not a user mistake: say so in one line
        if os.environ.get("AGENTC_DEBUG"):
            raise
        where = traceback.extract_tb(e.__traceback__)[-1]
        print(f"agentc: internal error: {type(e).__name__}: {e} (at {Path(where.filename).name}:{where.lineno}; "
              f"AGENTC_DEBUG=1 shows the traceback)", file=sys.stderr)
        return 70


def _error(e, code: int) -> int:
    print(f"agentc: error: {e}", file=sys.stderr)
    return code


if __name__ == "__main__":
    entry()
