"""`agentc serve BUILD`: a build as an HTTP service on Ray Serve.

One Serve deployment whose replicas each load the build (`AgentReplica`) and answer with
the FastAPI app of agentc/serving/http_api.py; Serve's proxy takes HTTP on `--host:--port`
(127.0.0.1 unless told otherwise) and routes to replicas. Without `--ray`, a private
one-node cluster of this machine's devices is started for the service (token, loopback, as
`agentc ray up`) and stopped with it; with `--ray ADDRESS`, each replica's devices are actors
on the cluster's nodes (agentc/distributed), the replica doing host work.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path

from ray import serve

from agentc.distributed.node_spec import PREFIX
from agentc.distributed.remote_device import PIN
from agentc.serving.http_api import make_app
from agentc.serving.serving_cluster import APP, serving_cluster


@serve.ingress()
class AgentReplica:
    """One replica: the build loaded (devices here, or as actors with `ray`), its app built
    once the session is up."""

    def __init__(self, build: str, ray_address: str | None, options: dict, emulate: dict | None = None):
        import time

        from agentc.runtime.session import Session
        from agentc.serving.emulated import EmulatedSession

        t0 = time.perf_counter()
        self.session = EmulatedSession(build, **emulate) if emulate else Session(build, ray=ray_address)
        self.start_s = time.perf_counter() - t0  # what a new replica costs before it serves
        self.options = options
        self.asgi = None

    def __serve_build_asgi_app__(self):
        self.asgi = make_app(self.session, **self.options)
        return self.asgi

    def record_autoscaling_stats(self) -> dict:
        """For agentc's autoscaling policy: arrivals, measured service time, start time."""
        stats = self.asgi.state.autoscaling_stats() if self.asgi is not None else {}
        return {**stats, "start_s": self.start_s}

    def __del__(self):
        session = getattr(self, "session", None)
        if session is not None:
            session.close()


def deployment(build: Path, plan: dict, ray_address: str | None, options: dict, replicas: int, max_ongoing: int,
               autoscale: tuple[int, int] | None = None, emulate: dict | None = None):
    """The bound deployment: replicas pinned to nodes with the build's device kinds when
    they hold the devices themselves; with `autoscale` (min, max), their number follows
    agentc's policy (agentc/serving/autoscale.py) instead of staying at `replicas`."""
    kinds = sorted({d["runtime"] for d in plan["devices"].values()})
    resources = {} if ray_address or emulate else {PREFIX + k: PIN for k in kinds}
    scaling = {"num_replicas": replicas}
    if autoscale is not None:
        from agentc.serving.autoscale import ScalePolicy

        sla_s = (plan.get("sla_ms") or 2000.0) / 1e3
        service_s = emulate["service_s"] if emulate else (plan.get("placement", {}).get("predicted_ms") or 10.0) / 1e3
        policy = ScalePolicy(sla_s=sla_s, service_s=service_s, min_replicas=autoscale[0], max_replicas=autoscale[1])
        scaling = {"num_replicas": "auto", "autoscaling_config": {
            "min_replicas": autoscale[0], "max_replicas": autoscale[1], "initial_replicas": max(1, autoscale[0]),
            "metrics_interval_s": 2.0, "look_back_period_s": 4.0, "upscale_delay_s": 0.0, "downscale_delay_s": 0.0,
            "policy": {"policy_function": "agentc.serving.autoscale:ServeAutoscaler",
                       "policy_kwargs": policy.kwargs()}}}
    # Requests beyond what replicas take wait in Serve's router, where the replicas' admission
    # control cannot see them: bound that queue too (Serve answers 503 past it).
    dep = serve.deployment(AgentReplica, name=plan["agent"], max_ongoing_requests=max_ongoing,
                           max_queued_requests=2 * max_ongoing,
                           ray_actor_options={"num_cpus": 0, "resources": resources}, **scaling)
    return dep.bind(str(build), ray_address, options, emulate)


def serve_build(build, ray_address: str | None = None, host: str = "127.0.0.1", port: int = 8000,
                api_key_file: str | None = None, max_body_kb: int = 1024, replicas: int = 1,
                max_ongoing: int = 8, ready=None, stop: threading.Event | None = None, deadline_ms: float | None = None,
                margin: float = 0.5, timeout_ms: float | None = None, autoscale: tuple[int, int] | None = None,
                emulate: dict | None = None) -> None:
    """Serve until `stop` is set (or SIGINT/SIGTERM). `ready(url)` is called once requests
    are answered. `deadline_ms`, `margin`, `timeout_ms`: admission control and 504s
    (agentc/serving/http_api.py). `emulate` {"service_s", "start_s"}: replicas that hold
    requests instead of computing (agentc/serving/emulated.py); a None value is filled in
    (the placement's predicted latency; the build's load time measured here)."""
    import json

    from agentc.runtime.host_ops import BuildError
    from agentc.runtime.verify import verify_build

    build = Path(build).resolve()
    verify_build(build, True)
    plan = json.loads((build / "plan.json").read_text())
    api_key = _read_key(api_key_file) if api_key_file else None
    if emulate is not None:
        from agentc.serving.emulated import measured_start_s

        emulate = dict(emulate)
        if emulate.get("service_s") is None:
            emulate["service_s"] = (plan.get("placement", {}).get("predicted_ms") or 10.0) / 1e3
        if emulate.get("start_s") is None:
            emulate["start_s"] = measured_start_s(build)
    stop = stop or threading.Event()
    with serving_cluster(ray_address, host, port, stop):
        try:
            options = {"api_key": api_key, "max_body_bytes": max_body_kb * 1024, "deadline_ms": deadline_ms,
                       "margin": margin, "timeout_ms": timeout_ms}
            serve.run(deployment(build, plan, ray_address, options, replicas, max_ongoing, autoscale, emulate),
                      name=APP, route_prefix="/")
        except Exception as e:  # noqa: BLE001 - a replica that cannot load the build: say why in one line
            raise BuildError(f"{build}: the service did not start: {_why_not_started(e, plan['agent'])}") from None
        if ready is not None:
            ready(f"http://{host}:{port}")
        stop.wait()


def _why_not_started(e: Exception, name: str) -> str:
    """The replica's own error (Serve's exception only says the deployment failed): the last
    `...Error: ...` line of the deployment's status message."""
    text = str(e)
    try:
        text = serve.status().applications[APP].deployments[name].message or text
    except Exception:  # noqa: BLE001, S110 - the status is a best effort; the exception remains
        pass
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    errors = [ln for ln in lines if "Error:" in ln and not ln.startswith("ray.exceptions")]
    why = errors[-1] if errors else (lines[0] if lines else type(e).__name__)
    head, sep, rest = why.partition(": ")
    return rest if sep and head.startswith("agentc.") else why  # agentc's own errors say enough


def _read_key(path: str) -> str:
    try:
        key = Path(path).read_text().strip()
    except OSError as e:
        raise OSError(e.errno, e.strerror, path) from None
    if not key:
        from agentc.frontend.graph import AgentError

        raise AgentError(f"--api-key-file {path}: the file is empty")
    return key


def _emulate_args(args) -> dict | None:
    if not args.emulate:
        return None
    return {"service_s": args.service_ms / 1e3 if args.service_ms else None, "start_s": args.start_s}


def main(args) -> int:
    def ready(url: str) -> None:
        print(f"serving at {url}: POST {url}/v1/agents/<agent>, GET {url}/healthz, {url}/metrics "
              f"(Ctrl-C stops)", file=sys.stderr, flush=True)

    if args.staged:
        from agentc.serving.staged_service import main as staged_main

        return staged_main(args, ready)

    serve_build(args.build, args.ray, args.host, args.port, args.api_key_file, args.max_body_kb, args.replicas,
                args.max_ongoing, ready=ready, deadline_ms=args.deadline_ms, margin=args.admission_margin,
                timeout_ms=args.timeout_ms,
                autoscale=(args.min_replicas, args.max_replicas) if args.autoscale else None,
                emulate=_emulate_args(args))
    return 0

