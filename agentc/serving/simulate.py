"""`agentc loadtest --simulate`: a discrete-event simulation of a staged service, so an hour
of trace takes seconds and a fleet study can sweep many deployments.

It runs agentc's own decision code over simulated time: the admission decision and the
stage scaler of agentc/serving/stage_scaler.py (the same functions the Serve controller
thread of a staged service calls), once per `tick_s` as that thread does. What it models:

- each replica serves one call at a time, in arrival order per stage, for the call's service
  time (the placement's prediction; an LLM call's follows the request's GeneratedTokens);
- a replica asked for serves `start_s` later (measured: process, module, weights) and costs
  money from the moment it is asked for until it is let go;
- scaling down lets idle replicas go first, a busy one once its call ends; a stage with no
  replica when a call needs one gets one at once (scale from zero: every stage of the request
  in joint mode, only that stage in reactive mode);
- a stage given a `Batching` (agentc/serving/batching.py) holds up to its max batch of calls
  per replica at once, each slowed by the measured batching curve (processor sharing; prefill
  and decode steps alternate); its scaler sizes replicas for the batch that keeps the SLA's
  slack, and admission predicts the slower calls;
- a static deployment: fixed replicas per stage, up before the first request;
- `hop_s`: each call reaches its stage that long after it is issued (a DeploymentHandle call
  and HTTP, measured on a running service: its idle latency minus the predicted one, per call
  on the longest path).

Rows have the load test's fields (agentc/serving/load_report.py), with `sent_s` equal to the
arrival: a simulation has no client lag.
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections import deque
from dataclasses import dataclass, field

from agentc.serving.arrivals import Arrival
from agentc.serving.autoscale import ScalePolicy
from agentc.serving.batching import Batching, SharedReplica, split, stage_capacity
from agentc.serving.stage_scaler import JOINT, REACTIVE, SLOTS, StageScaler, predicted_s, refuse
from agentc.serving.stages import StageGraph

STATIC = "static"


@dataclass
class Deployment:
    """How the stages are run: `scaling` joint | reactive | static; `replicas` per stage
    (static: all the time; else those up at the start)."""

    scaling: str
    replicas: dict[str, int]
    policy: ScalePolicy
    margin: float = 0.5  # admission: refuse past the SLA by more than this fraction
    timeout_s: float | None = None  # 504 past this (the work still runs)
    tick_s: float = 1.0
    start_s: dict[str, float] = field(default_factory=dict)
    hop_s: float = 0.0  # from a call's issue to its stage's queue (a handle call: measured on a service)
    # Calls a replica takes at once. 1: one queue per stage, each call to the first free
    # replica. More: Serve's way, a call goes to the less loaded of two replicas with room,
    # picked at random, and waits there behind the one running.
    slots: int = SLOTS
    batching: dict[str, Batching] = field(default_factory=dict)  # stages whose replicas batch calls


@dataclass
class _Replica:
    asked: float
    ready: float
    busy: bool = False
    leaving: bool = False
    gone: float | None = None
    local: deque = field(default_factory=deque)  # calls given to it, waiting (slots > 1)
    shared: SharedReplica | None = None  # calls it holds together (a batching stage)
    version: int = 0  # of its next batch event: a stale one is ignored


class _Stage:
    def __init__(self, name: str):
        self.name = name
        self.queue: deque = deque()
        self.replicas: list[_Replica] = []
        self.in_flight = 0
        self.reached = 0
        self.served, self.service_sum = 0, 0.0

    def live(self) -> list[_Replica]:
        return [r for r in self.replicas if r.gone is None and not r.leaving]

    def ready(self, now: float) -> int:
        return sum(1 for r in self.live() if r.ready <= now)


class Simulation:
    def __init__(self, graph: StageGraph, deployment: Deployment):
        self.g, self.d = graph, deployment
        self.stages = {s: _Stage(s) for s in graph.stages}
        self.batches = {s: stage_capacity(graph, s, b) for s, b in deployment.batching.items()}
        self.scaler = None if deployment.scaling == STATIC else StageScaler(
            graph, deployment.policy, deployment.scaling, deployment.start_s,
            {s: factor for s, (_, factor, _) in self.batches.items()})
        self.events: list = []
        self.seq = itertools.count()
        self.rng = random.Random(0)
        self.timeline: list[tuple[float, dict[str, int]]] = []
        self.offered = 0

    def start_of(self, stage: str) -> float:
        return self.d.start_s.get(stage, self.d.policy.start_s)

    def _at(self, t: float, kind: str, *payload) -> None:
        heapq.heappush(self.events, (t, next(self.seq), kind, payload))

    def run(self, arrivals: list[Arrival]) -> tuple[list[dict], dict]:
        for s, st in self.stages.items():
            st.replicas = [_Replica(0.0, 0.0) for _ in range(self.d.replicas.get(s, 0))]
        self.rows = [{"i": i, "arrival_s": a.at, "sent_s": a.at, "status": 0, "end_s": None, "latency_ms": None,
                      "context_tokens": a.context_tokens, "generated_tokens": a.generated_tokens}
                     for i, a in enumerate(arrivals)]
        self.pending: dict[int, dict] = {}
        for i, a in enumerate(arrivals):
            self._at(a.at, "arrive", i)
        horizon = arrivals[-1].at if arrivals else 0.0
        if self.scaler is not None:
            self._at(0.0, "tick")
        self._snapshot(0.0)
        now = 0.0
        while self.events:
            now, _, kind, payload = heapq.heappop(self.events)
            if kind == "tick":
                if now > horizon and not self.pending:
                    continue  # nothing left to serve
                self._tick(now)
                self._at(now + self.d.tick_s, "tick")
            else:
                getattr(self, "_" + kind)(now, *payload)
        end = max(now, horizon)
        return self.rows, self._costs(end)

    # -- requests ---------------------------------------------------------------------
    def _arrive(self, now: float, i: int) -> None:
        # Every arrival is demand, refused or not: a policy that counted only admitted
        # requests would hold a stage at zero while admission refuses for want of it.
        self.offered += 1
        roots = [c for c in self.g.calls if not c.after]
        for c in roots:
            self.stages[c.stage].reached += 1
        for s in {c.stage for c in (self.g.calls if self.d.scaling == JOINT else roots)}:
            self._from_zero(now, s)
        service = {s: self._service(s) for s in self.stages}
        ready = {s: st.ready(now) for s, st in self.stages.items()}
        starting = {s: min((r.ready - now for r in st.live() if r.ready > now), default=self.start_of(s))
                    for s, st in self.stages.items()}
        predicted = predicted_s(self.g, {s: st.in_flight for s, st in self.stages.items()}, ready, starting, service,
                                {s: (size, slow) for s, (size, _, slow) in self.batches.items()})
        if refuse(predicted, self.g.sla_s, self.d.margin) is not None:
            row = self.rows[i]
            row.update(status=503, end_s=now, latency_ms=0.0)
            return
        self.pending[i] = {"done": set()}
        for c in roots:
            self._issue(now, i, c)

    def _issue(self, now: float, i: int, call) -> None:
        if self.d.hop_s > 0:
            self._at(now + self.d.hop_s, "enqueue", i, call)
        else:
            self._enqueue(now, i, call)

    def _enqueue(self, now: float, i: int, call) -> None:
        st = self.stages[call.stage]
        if call.after:  # (a root call was counted when its request arrived)
            st.reached += 1
        st.in_flight += 1
        if self.d.scaling == REACTIVE:
            self._from_zero(now, call.stage)
        st.queue.append((i, call, call.service(self.rows[i]["generated_tokens"] or None)))
        self._dispatch(now, st)

    def _dispatch(self, now: float, st: _Stage) -> None:
        if st.name in self.d.batching:
            self._dispatch_batched(now, st, self.d.batching[st.name])
            return
        if self.d.slots == 1:
            for r in st.live():
                if not st.queue:
                    return
                if r.ready <= now and not r.busy:
                    self._run(now, st, r, st.queue.popleft())
            return
        while st.queue:
            room = [r for r in st.live() if r.ready <= now and r.busy + len(r.local) < self.d.slots]
            if not room:
                return
            r = min(self.rng.sample(room, min(2, len(room))), key=lambda r: r.busy + len(r.local))
            r.local.append(st.queue.popleft())
            if not r.busy:
                self._run(now, st, r, r.local.popleft())

    def _dispatch_batched(self, now: float, st: _Stage, b: Batching) -> None:
        """Each call to the less loaded of two random replicas with room, held with the
        calls already there."""
        size = self.batches[st.name][0]  # the batch its replicas are sized for, at most max_batch
        while st.queue:
            room = [r for r in st.live() if r.ready <= now and (r.shared is None or len(r.shared) < size)]
            if not room:
                return
            r = min(self.rng.sample(room, min(2, len(room))), key=lambda r: len(r.shared or ()))
            if r.shared is None:
                r.shared = SharedReplica(b, now)
            _, call, service = item = st.queue.popleft()
            r.shared.add(now, *split(call, service), item)
            self._batch_next(now, st, r)

    def _batch_next(self, now: float, st: _Stage, r: _Replica) -> None:
        r.busy = len(r.shared) > 0
        r.version += 1
        dt = r.shared.next_s()
        if dt != float("inf"):
            self._at(now + dt, "batch", st.name, r, r.version)

    def _batch(self, now: float, stage: str, r: _Replica, version: int) -> None:
        if version != r.version:
            return
        st = self.stages[stage]
        finished = r.shared.advance(now)
        self._batch_next(now, st, r)
        if r.leaving and not r.busy:
            r.gone = now
        for i, call, service in finished:
            self._finish(now, st, i, call, service)
        self._dispatch(now, st)

    def _run(self, now: float, st: _Stage, r: _Replica, item) -> None:
        i, call, service = item
        r.busy = True
        self._at(now + service, "done", st.name, r, i, call, service)

    def _done(self, now: float, stage: str, r: _Replica, i: int, call, service: float) -> None:
        st = self.stages[stage]
        r.busy = False
        if r.local:
            self._run(now, st, r, r.local.popleft())
        elif r.leaving:
            r.gone = now
        self._finish(now, st, i, call, service)
        self._dispatch(now, st)

    def _finish(self, now: float, st: _Stage, i: int, call, service: float) -> None:
        """A call is done: its request goes on to the calls that waited for it, or ends."""
        st.in_flight -= 1
        st.served += 1
        st.service_sum += service
        req = self.pending[i]
        req["done"].add(call.node)
        if len(req["done"]) == len(self.g.calls):
            del self.pending[i]
            end = now + self.g.host_s
            row = self.rows[i]
            latency = end - row["arrival_s"]
            timed_out = self.d.timeout_s is not None and latency > self.d.timeout_s
            row.update(status=504 if timed_out else 200, end_s=end, latency_ms=latency * 1e3)
        else:
            for c in self.g.calls:
                if call.node in c.after and c.node not in req["done"] and all(a in req["done"] for a in c.after):
                    self._issue(now, i, c)

    def _ready(self, now: float, stage: str) -> None:
        self._dispatch(now, self.stages[stage])

    def _service(self, stage: str) -> float:
        st = self.stages[stage]
        if st.served:
            return st.service_sum / st.served
        return self.g.service_s(stage) / max(1, self.g.visits(stage))

    # -- scaling ----------------------------------------------------------------------
    def _from_zero(self, now: float, stage: str) -> None:
        if self.scaler is not None and not self.stages[stage].live():
            self._scale(now, stage, 1)

    def _tick(self, now: float) -> None:
        measured = {s: (st.service_sum / st.served if st.served else None) for s, st in self.stages.items()}
        current = {s: len(st.live()) for s, st in self.stages.items()}
        targets = self.scaler.decide(now, self.offered, {s: st.reached for s, st in self.stages.items()},
                                     current, measured)
        for s, n in targets.items():
            if n != current[s]:
                self._scale(now, s, n)

    def _scale(self, now: float, stage: str, n: int) -> None:
        st = self.stages[stage]
        live = st.live()
        if n > len(live):
            for _ in range(n - len(live)):
                r = _Replica(now, now + self.start_of(stage))
                st.replicas.append(r)
                self._at(r.ready, "ready", stage)
        else:
            # Let go of starting replicas first, then idle ones, then busy ones once done.
            order = sorted(live, key=lambda r: (r.ready <= now, r.busy, -r.asked))
            for r in order[:len(live) - n]:
                if r.busy or r.local:
                    r.leaving = True
                else:
                    r.gone = now
        self._snapshot(now)

    def _snapshot(self, now: float) -> None:
        self.timeline.append((now, {s: len(st.live()) for s, st in self.stages.items()}))

    def _costs(self, end: float) -> dict:
        seconds, cost = {}, 0.0
        for s, st in self.stages.items():
            secs = sum((r.gone if r.gone is not None else end) - r.asked for r in st.replicas)
            seconds[s] = secs
            cost += secs / 3600 * self.g.stages[s].price_per_hour
        return {"replica_seconds": {s: round(v, 3) for s, v in seconds.items()},
                "cost_usd": cost, "span_s": end, "timeline": self.timeline}


def simulate(graph: StageGraph, arrivals: list[Arrival], deployment: Deployment) -> tuple[list[dict], dict]:
    """Per-request rows and {replica_seconds per stage, cost_usd, span_s, timeline}."""
    return Simulation(graph, deployment).run(arrivals)
