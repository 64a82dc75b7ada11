"""A staged service on Ray Serve: one deployment per stage (agentc/serving/stages.py), an
ingress that walks each request through them by DeploymentHandles, and agentc's controller
scaling every stage together (`agentc serve --emulate --staged`).

- `StageReplica`: a replica of one stage. In emulation it holds each call for the call's
  service time, one call at a time (a device serves one), after taking as long to start as
  a real replica was measured to. It needs its device type's Ray resource
  (`agentc.type.<catalog id>`), so replicas land only on nodes that have that device; the
  private cluster of an emulated service advertises the stages' types as logical resources.
- `StagedIngress`: the HTTP app (agentc/serving/http_api.py) over a `StagedSession`, which
  runs a request's calls in graph order, concurrently where the graph fans out, and counts
  what the controller and admission need: requests offered, calls in flight and reached per
  stage, measured service times.
- The controller (a thread of the ingress replica) decides every `tick_s` with the stage
  scaler of agentc/serving/stage_scaler.py, the same code the simulator runs, and sets each
  stage's replicas through Serve's controller (the application is deployed with
  `external_scaler_enabled`). A request that needs a stage with no replica asks for one at
  once (scale from zero; joint mode asks for every stage of the request).

A call whose replica dies mid-call (replica or node lost) is tried again, up to `RETRIES`
times, on the replicas Serve has or starts in its place: the request is not lost.

Admission: the staged prediction of stage_scaler.predicted_s over the stages' in-flight
calls and ready replicas (read from Serve each tick), refusing past the SLA by `margin`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import threading
import time
from pathlib import Path

from ray import serve

from agentc.distributed.node_spec import TYPE
from agentc.distributed.remote_device import PIN
from agentc.runtime.host_ops import RunError
from agentc.runtime.session import check_inputs
from agentc.serving.autoscale import ScalePolicy
from agentc.serving.http_api import TOKENS_KEY
from agentc.serving.serving_cluster import ROUTER_ENV
from agentc.serving.stage_gate import StageGate
from agentc.serving.stage_metrics import metrics_text
from agentc.serving.stage_scaler import JOINT, REACTIVE, SLOTS, StageScaler, predicted_s, refuse
from agentc.serving.stages import StageGraph

OUTPUT = "(emulated)"
STATIC = "static"
RETRIES = 3  # a call is tried again on another replica this many times


def deployment_name(stage: str) -> str:
    """A stage's deployment: Serve names allow no '@'."""
    return "stage-" + stage.replace("@", "-at-")


@serve.deployment
class StageReplica:
    def __init__(self, stage: str, start_s: float):
        self.stage = stage
        time.sleep(start_s)  # what a real replica's process, module and weights take (measured)
        self.device = asyncio.Lock()

    async def __call__(self, seconds: float) -> float:
        """Hold the device for one call; returns the seconds it was held."""
        async with self.device:
            t0 = time.perf_counter()
            await asyncio.sleep(seconds)
            return time.perf_counter() - t0


@serve.deployment
class ShareReplica:
    """A replica of one stage that computes: the build's devices that the stage's calls
    use, with their modules and weights (agentc/serving/stage_plans.py), and each call of
    the stage (a fan-out's branches share one stage) run as its own share."""

    def __init__(self, build: str, plan: dict, shares: dict[str, dict]):
        from agentc.runtime.session import Session

        self.session = Session(build, plan=plan)
        self.shares = {node: self.session.share(share) for node, share in shares.items()}

    def __call__(self, node: str, *args) -> list:
        share = self.shares[node]
        return share.run_values(dict(zip(share.plan["inputs"], args)))

    def __del__(self):
        session = getattr(self, "session", None)
        if session is not None:
            session.close()


class StagedAdmission:
    """http_api's Admission interface over the stages' state. It has no `measured`: it learns
    no per-request time, each stage's service time is measured where it is called
    (StagedSession.measured)."""

    def __init__(self, session: StagedSession, margin: float):
        self.s, self.margin = session, margin
        self.deadline_s = session.graph.sla_s

    @property
    def service_s(self) -> float:
        return self.s.graph.latency_s()

    def predicted_s(self, in_flight: int) -> float:
        s = self.s
        with s.lock:
            return predicted_s(s.graph, dict(s.in_flight), dict(s.ready), {st: s.start_s for st in s.graph.stages},
                               {st: s.scaler.service_per_visit(st, s.measured) for st in s.graph.stages})

    def refuse(self, in_flight: int) -> float | None:
        self.s.offered_one()
        return refuse(self.predicted_s(in_flight), self.deadline_s, self.margin)


class StagedSession:
    """What http_api needs of a session, for a staged service."""

    mode = "emulate"

    def __init__(self, graph: StageGraph, handles: dict, policy: ScalePolicy, scaling: str, margin: float,
                 tick_s: float, app: str, start_s: float, initial: dict[str, int], queue: bool = False):
        self.graph, self.handles, self.start_s = graph, handles, start_s
        self.plan = {"agent": graph.agent, "inputs": graph.extra["inputs"], "outputs": [OUTPUT],
                     "sla_ms": graph.sla_s * 1e3, "placement": {"predicted_ms": graph.latency_s() * 1e3}}
        self.models, self.closed, self.streamed = {}, False, None
        self.scaler = StageScaler(graph, policy, JOINT if scaling == STATIC else scaling)
        self.scaling = scaling
        self.lock = threading.Lock()
        self.offered = 0
        self.in_flight = dict.fromkeys(graph.stages, 0)
        self.reached = dict.fromkeys(graph.stages, 0)
        self.measured: dict[str, float | None] = dict.fromkeys(graph.stages, None)
        self.target = dict(initial)
        self.ready = dict(initial)
        # Replica-seconds from the moment a replica is asked for: the targets, integrated.
        self.t0 = self.since = time.monotonic()
        self.replica_s = dict.fromkeys(graph.stages, 0.0)
        self.starts = dict.fromkeys(graph.stages, 0)
        self.start_s_seen: dict[str, list[float]] = {st: [] for st in graph.stages}  # asked -> serving
        self.asked: dict[str, list[float]] = {st: [] for st in graph.stages}  # asks not serving yet
        self.retries = 0
        self.admission = StagedAdmission(self, margin)
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True, name="agentc-staged").start()
        # queue: calls wait here, one per replica serving (agentc/serving/stage_gate.py)
        self.gates = {st: StageGate(lambda st=st: max(1, self.ready.get(st, 0)), self.loop)
                      for st in graph.stages} if queue else {}
        self.controller = _Controller(self, app, tick_s)

    def offered_one(self) -> None:
        with self.lock:
            self.offered += 1
            roots = [c for c in self.graph.calls if not c.after]
            for c in roots:
                self.reached[c.stage] += 1
            wanted = {c.stage for c in (self.graph.calls if self.scaling == JOINT else roots)}
            cold = [s for s in wanted if self.target[s] == 0 and self.scaling != STATIC]
        for s in cold:
            self.controller.set(s, 1)

    takes_token_hint = True

    def run(self, inputs: dict, fetch=None, on_token=None) -> dict:
        inputs = dict(inputs)
        tokens = inputs.pop(TOKENS_KEY, None)  # else each LLM call generates all its max_tokens
        check_inputs(inputs, self.plan["inputs"])
        if self.closed:
            raise RunError("the session is closed")
        asyncio.run_coroutine_threadsafe(self._request(tokens), self.loop).result()
        return {"outputs": [OUTPUT], "values": {}}

    async def _request(self, tokens) -> None:
        done = {c.node: asyncio.Event() for c in self.graph.calls}

        async def one(call):
            for a in call.after:
                await done[a].wait()
            if call.after:
                with self.lock:
                    self.reached[call.stage] += 1
                    cold = self.scaling == REACTIVE and self.target[call.stage] == 0
                if cold:
                    self.controller.set(call.stage, 1)
            with self.lock:
                self.in_flight[call.stage] += 1
            try:
                held = await self._call(call.stage, call.service(tokens))
            finally:
                with self.lock:
                    self.in_flight[call.stage] -= 1
            with self.lock:
                m = self.measured[call.stage]
                self.measured[call.stage] = held if m is None else m + 0.2 * (held - m)
            done[call.node].set()

        await asyncio.gather(*(one(c) for c in self.graph.calls))

    def account(self, now: float | None = None) -> None:
        """Add the replica-seconds since the last account (call with the lock held)."""
        now = time.monotonic() if now is None else now
        for st, n in self.target.items():
            self.replica_s[st] += n * (now - self.since)
        self.since = now

    def metrics_text(self) -> str:
        return metrics_text(self)

    async def _call(self, stage: str, *args):
        """One call of a stage; again on another replica if the one it ran on died (a
        replica or node lost: Serve starts a replacement, the request goes on)."""
        from ray.exceptions import ActorUnavailableError, RayActorError

        async with self.gates.get(stage) or contextlib.nullcontext():
            for attempt in range(RETRIES + 1):
                try:
                    return await self.handles[stage].remote(*args)
                except (RayActorError, ActorUnavailableError) as e:
                    with self.lock:
                        self.retries += 1
                    if attempt == RETRIES:
                        raise RunError(f"stage {stage}: its replicas kept failing ({type(e).__name__})") from None
        raise AssertionError("unreachable")

    def close(self) -> list[str]:
        self.closed = True
        self.controller.stop()
        self.loop.call_soon_threadsafe(self.loop.stop)
        return []


class RealStagedSession(StagedSession):
    """A staged service that computes: the ingress runs its share of the plan (host
    operators, tools) with a Session, each `stage` operator calling its stage's deployment."""

    mode = "real"
    takes_token_hint = False

    def __init__(self, build: str, ingress_plan: dict, graph: StageGraph, *args):
        super().__init__(graph, *args)
        from agentc.runtime.session import Session
        from agentc.serving.stage_plans import callee

        # Its host threads wait on stage calls: as many as calls may be in flight at once.
        self.ingress = Session(build, plan=ingress_plan, host_threads=256)
        self.plan, self.models = self.ingress.plan, self.ingress.models
        stage_of = {c.node: c.stage for c in graph.calls}
        first = {c.node for c in graph.calls if not c.after}
        for node, stage in stage_of.items():
            self.ingress.tools[callee(node)] = functools.partial(self._stage_call, node, stage, node in first)

    def _stage_call(self, node: str, stage: str, root: bool, *args) -> list:
        """On an ingress host thread: one call to the stage, counted as the controller and
        admission need."""
        with self.lock:
            if not root:  # (a root call was counted when its request arrived)
                self.reached[stage] += 1
            cold = self.scaling == REACTIVE and self.target[stage] == 0
            self.in_flight[stage] += 1
        if cold:
            self.controller.set(stage, 1)
        t0 = time.perf_counter()
        try:
            out = asyncio.run_coroutine_threadsafe(self._call(stage, node, *args), self.loop).result()
        finally:
            with self.lock:
                self.in_flight[stage] -= 1
        held = time.perf_counter() - t0
        with self.lock:
            m = self.measured[stage]
            self.measured[stage] = held if m is None else m + 0.2 * (held - m)
        return out

    def run(self, inputs: dict, fetch=None, on_token=None) -> dict:
        return self.ingress.run(inputs, fetch)

    def close(self) -> list[str]:
        super().close()
        return self.ingress.close()


class _Controller:
    """Every tick: replicas ready per stage from Serve, then the scaler's targets, set
    through Serve's controller."""

    def __init__(self, session: StagedSession, app: str, tick_s: float):
        import ray
        from ray.serve._private.common import DeploymentID
        from ray.serve._private.constants import SERVE_CONTROLLER_NAME, SERVE_NAMESPACE

        self.s, self.app, self.tick_s = session, app, tick_s
        self.serve_controller = ray.get_actor(SERVE_CONTROLLER_NAME, namespace=SERVE_NAMESPACE)
        self.ids = {st: DeploymentID(name=deployment_name(st), app_name=app) for st in session.graph.stages}
        self.t0 = time.monotonic()
        self.halt = threading.Event()
        for st, n in session.target.items():
            if n == 0:
                self.serve_controller.update_deployment_replicas.remote(self.ids[st], 0)
        threading.Thread(target=self._run, daemon=True, name="agentc-scaler").start()

    def set(self, stage: str, n: int) -> None:
        with self.s.lock:
            self.s.account()
            more = max(0, n - self.s.target[stage])
            self.s.starts[stage] += more
            self.s.asked[stage] += [time.monotonic()] * more
            if n < self.s.target[stage]:  # asks let go before serving are not starts to time
                del self.s.asked[stage][max(0, len(self.s.asked[stage]) - (self.s.target[stage] - n)):]
            self.s.target[stage] = n
        self.serve_controller.update_deployment_replicas.remote(self.ids[stage], n)

    def _run(self) -> None:
        while not self.halt.wait(self.tick_s):
            try:
                self._tick()
            except Exception:  # noqa: BLE001, S112 - a missed tick; the next one decides again
                continue

    def _tick(self) -> None:
        deps = serve.status().applications[self.app].deployments
        ready = {st: deps[self.ids[st].name].replica_states.get("RUNNING", 0) for st in self.s.graph.stages}
        s = self.s
        now = time.monotonic()
        with s.lock:
            for st, n in ready.items():  # replicas that began serving since the last tick
                for _ in range(max(0, n - s.ready.get(st, 0))):
                    if s.asked[st]:
                        s.start_s_seen[st].append(now - s.asked[st].pop(0))
            s.ready = ready
            for gate in s.gates.values():  # more replicas serving: more calls may go
                gate.poke()
            offered, reached, current, measured = s.offered, dict(s.reached), dict(s.target), dict(s.measured)
        if s.scaling == STATIC:
            return
        targets = s.scaler.decide(time.monotonic() - self.t0, offered, reached, current, measured)
        for st, n in targets.items():
            if n != current[st]:
                self.set(st, n)

    def stop(self) -> None:
        self.halt.set()


@serve.ingress()
class StagedIngress:
    def __init__(self, graph: StageGraph, handles: dict, policy: ScalePolicy, scaling: str, options: dict,
                 tick_s: float, app: str, start_s: float, initial: dict[str, int], real: tuple | None = None,
                 queue: bool = False):
        rest = (handles, policy, scaling, options.get("margin", 0.5), tick_s, app, start_s, initial, queue)
        self.session = RealStagedSession(*real, graph, *rest) if real else StagedSession(graph, *rest)
        self.options = options

    def __serve_build_asgi_app__(self):
        from agentc.serving.http_api import make_app

        return make_app(self.session, **self.options)

    def __del__(self):
        session = getattr(self, "session", None)
        if session is not None:
            session.close()


def application(graph: StageGraph, policy: ScalePolicy, scaling: str, options: dict, start_s: float, app: str,
                max_ongoing: int = SLOTS, tick_s: float = 1.0, initial: dict[str, int] | None = None,
                build: str | None = None, queue: bool = False):
    """The bound application: a deployment per stage, pinned to its device type, and the
    ingress holding their handles. A stage replica takes `max_ongoing` calls at once (2: one
    runs, one waits on the replica's device lock; ROUTER_ENV says what 1 gave). `initial`:
    replicas per stage at the start (1 each); with scaling "static", all the time. `build`:
    stages compute with the build's modules (else they are emulated). `queue`: calls wait at
    the ingress in a queue per stage (agentc/serving/stage_gate.py)."""
    initial = initial or dict.fromkeys(graph.stages, 1)
    real = None
    if build is not None:
        import json

        from agentc.serving.stage_plans import split, stage_plan

        ingress_plan, shares = split(json.loads((Path(build) / "plan.json").read_text()), graph)
        real = (build, ingress_plan)
    handles = {}
    for st in graph.stages.values():
        if real is not None:
            handles[st.name] = ShareReplica.options(
                name=deployment_name(st.name), num_replicas=max(1, initial[st.name]), max_ongoing_requests=max_ongoing,
                max_queued_requests=-1, ray_actor_options={"num_cpus": 0, "resources": {TYPE + st.device_type: PIN}},
            ).bind(build, stage_plan(list(st.nodes), shares), {n: shares[n] for n in st.nodes})
            continue
        # (Serve deploys at least one replica; the controller takes a stage meant to start
        # at zero down to it at once.)
        dep = StageReplica.options(name=deployment_name(st.name), num_replicas=max(1, initial[st.name]),
                                   max_ongoing_requests=max_ongoing, max_queued_requests=-1,
                                   ray_actor_options={"num_cpus": 0, "resources": {TYPE + st.device_type: PIN}})
        handles[st.name] = dep.bind(st.name, start_s)
    ingress = serve.deployment(StagedIngress, name=graph.agent or "agent", num_replicas=1, max_ongoing_requests=1000,
                               ray_actor_options={"num_cpus": 0, "runtime_env": {"env_vars": ROUTER_ENV}})
    return ingress.bind(dataclasses.replace(graph), handles, policy, scaling, options, tick_s, app, start_s, initial,
                        real, queue)

