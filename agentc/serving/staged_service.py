"""`agentc serve TARGET --staged`: the staged service of agentc/serving/staged.py started on a
cluster for as long as it runs, from the command line or from Python (`serve_staged`)."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

from ray import serve

from agentc.serving.autoscale import ScalePolicy
from agentc.serving.staged import application
from agentc.serving.stages import StageGraph


def serve_staged(graph: StageGraph, policy: ScalePolicy, scaling: str, start_s: float, host: str = "127.0.0.1",
                 port: int = 8000, margin: float = 0.5, ready=None, stop: threading.Event | None = None,
                 ray_address: str | None = None, tick_s: float = 1.0, initial: dict[str, int] | None = None,
                 timeout_ms: float | None = None, build: str | None = None, slots: int = 2,
                 queue: bool = False) -> None:
    """Serve the stages until `stop` is set: computing with `build`'s modules, else
    emulated; on a private cluster that advertises the stages' device types (or the cluster
    at `ray_address`, whose nodes must)."""
    from agentc.runtime.host_ops import BuildError
    from agentc.serving.serving_cluster import APP, serving_cluster

    stop = stop or threading.Event()
    types = tuple(sorted({st.device_type for st in graph.stages.values()}))
    with serving_cluster(ray_address, host, port, stop, logical=types):
        options = {"margin": margin, "deadline_ms": graph.sla_s * 1e3, "timeout_ms": timeout_ms}
        try:
            serve.run(application(graph, policy, scaling, options, start_s, APP, max_ongoing=slots, tick_s=tick_s,
                                  initial=initial, build=build, queue=queue),
                      name=APP,
                      route_prefix="/", external_scaler_enabled=True)
        except Exception as e:  # noqa: BLE001 - say why in one line
            raise BuildError(f"{graph.agent}: the staged service did not start: {type(e).__name__}: "
                             f"{str(e).splitlines()[0] if str(e) else ''}") from None
        if ready is not None:
            ready(f"http://{host}:{port}")
        stop.wait()


def main(args, ready) -> int:
    """`agentc serve TARGET --staged [--emulate]`."""
    import dataclasses
    import json

    from agentc.frontend.graph import AgentError
    from agentc.serving.simulated_run import _measured_start, stage_graph_of

    build = None
    if not args.emulate:
        if not (Path(args.build) / "plan.json").is_file():
            raise AgentError(f"--staged: {args.build}: stages that compute need a build directory (or use --emulate)")
        from agentc.runtime.verify import verify_build

        build = str(Path(args.build).resolve())
        verify_build(Path(build), True)
    graph = stage_graph_of(args.build, args.cluster, measured=args.measured_service)
    if args.sla_ms:
        graph = dataclasses.replace(graph, sla_s=args.sla_ms / 1e3)
    if graph.sla_s is None:
        raise AgentError(f"{args.build}: the agent has no SLA; give --sla-ms")
    initial = None
    if args.stage_replicas:
        try:
            initial = {**dict.fromkeys(graph.stages, 1), **json.loads(args.stage_replicas)}
        except ValueError as e:
            raise AgentError(f"--stage-replicas: not JSON ({e})") from None
        unknown = set(initial) - set(graph.stages)
        if unknown:
            raise AgentError(f"--stage-replicas: unknown stage {min(unknown)!r} (stages: {', '.join(graph.stages)})")
    start_s = args.start_s if args.start_s is not None else _measured_start(args.build)
    from agentc.serving.autoscale import ScalePolicy

    policy = ScalePolicy(sla_s=graph.sla_s, service_s=graph.latency_s(), start_s=start_s,
                         min_replicas=args.min_replicas, max_replicas=args.max_replicas,
                         target_utilisation=args.target_utilisation, hold_s=args.hold_s)
    print(graph.table(), file=sys.stderr)
    serve_staged(graph, policy, args.scaling, start_s, args.host, args.port, args.admission_margin, ready=ready,
                 ray_address=args.ray, initial=initial, timeout_ms=args.timeout_ms, build=build, slots=args.stage_slots,
                 queue=args.stage_queue)
    return 0
