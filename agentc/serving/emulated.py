"""A replica that holds each request for the service time instead of computing: for load
tests at rates this machine's two cores cannot compute (`agentc serve --emulate`). The
control plane stays real (Serve, the HTTP app, admission control, the autoscaler); the compute
is modelled.

It checks inputs as a real session does, serves one request at a time per replica (a real
replica's device does: requests queue on it), and before it serves, takes as long to start
as a real replica of the build was measured to (`start_s`).
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

from agentc.runtime.host_ops import RunError
from agentc.runtime.session import check_inputs

OUTPUT = "(emulated)"


class EmulatedSession:
    mode = "emulate"

    def __init__(self, build, service_s: float, start_s: float):
        self.plan = json.loads((Path(build) / "plan.json").read_text())
        self.service_s, self.models, self.closed = service_s, {}, False
        self._device = threading.Lock()  # one request on the replica's device at a time
        time.sleep(start_s)

    @property
    def streamed(self):
        return None

    def run(self, inputs: dict, fetch=None, on_token=None) -> dict:
        check_inputs(inputs, self.plan["inputs"])
        if self.closed:
            raise RunError("the session is closed")
        with self._device:
            time.sleep(self.service_s)
        return {"outputs": [OUTPUT] * len(self.plan["outputs"]), "values": {}}

    def close(self) -> list[str]:
        self.closed = True
        return []


def measured_start_s(build) -> float:
    """How long a real replica of `build` takes to load it here (a session opened and
    closed once; the first load of a process also imports IREE)."""
    from agentc.runtime.session import Session

    t0 = time.perf_counter()
    Session(build).close()
    return time.perf_counter() - t0


def measured_process_start_s(build) -> float:
    """How long a new replica process of `build` takes to serve: a fresh Python that
    imports agentc and opens the build (IREE, tokenizers, module, weights), as a Serve replica
    process does before its first request; the Ray actor's own start is not included."""
    import subprocess
    import sys

    code = "import agentc, sys; agentc.load(sys.argv[1]).close()"
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", code, str(build)], check=True, capture_output=True)
    return time.perf_counter() - t0
