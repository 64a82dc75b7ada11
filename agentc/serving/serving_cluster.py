"""Serve on a Ray cluster for as long as a service runs: the cluster at an address, or a
private one-node cluster of this machine's devices started for it (token, loopback, as
`agentc ray up`), and everything started stopped on the way out. Used by `agentc serve`
(agentc/serving/server.py) and the staged service (agentc/serving/staged.py)."""

from __future__ import annotations

import contextlib
import signal
import tempfile
import threading
from pathlib import Path

from ray import serve

APP = "agentc"  # the Serve application's name
# A call that finds every replica of a stage full waits in the caller's Serve router, which
# looks again after a backoff (Ray Serve 2.58: 25 ms, doubling to 500 ms). The staged ingress
# looks every 2 to 10 ms instead, to come close to a queue per stage. Measured
# (experiments/serving/stage_slots.py), it did not: one call per replica with it gave P95 623
# ms against 509 with two, and two calls per replica gave P95 509 ms against 530 in the serve
# bench's run without it (run-to-run variation here is about 10%).
ROUTER_ENV = {"RAY_SERVE_ROUTER_RETRY_INITIAL_BACKOFF_S": "0.002", "RAY_SERVE_ROUTER_RETRY_MAX_BACKOFF_S": "0.01"}


@contextlib.contextmanager
def serving_cluster(ray_address: str | None, host: str, port: int, stop: threading.Event, logical: tuple = ()):
    """Serve started on the cluster at `ray_address`, or on a private one-node cluster of
    this machine's devices (plus `logical` device types, for emulated stages), stopped with
    everything it started on the way out; SIGINT/SIGTERM set `stop`."""
    from agentc.distributed import connect, local_cluster

    private = None
    try:
        if ray_address is None:
            from agentc.devices import usable

            private = Path(tempfile.mkdtemp(prefix="agentc-serve-")) / "cluster"
            state = local_cluster.up([",".join(usable()) or "cpu"], directory=private, logical=logical)
            connect.connect(state["address"], state["token"])
        else:
            connect.connect(ray_address)
        # After connecting: ray.init sets its own SIGTERM handler, which exits without
        # stopping the private cluster.
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                signal.signal(sig, lambda *_: stop.set())
        serve.start(proxy_location="HeadOnly", http_options={"host": host, "port": port})
        yield
    finally:
        import ray

        if ray.is_initialized():  # (serve.shutdown would start a local Ray to find nothing)
            try:
                serve.shutdown()
            except Exception:  # noqa: BLE001, S110 - shutting down what may not have started
                pass
            ray.shutdown()
        if private is not None:
            local_cluster.down(directory=private)
            import shutil

            shutil.rmtree(private.parent, ignore_errors=True)
