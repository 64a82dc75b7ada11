"""Replica targets for every stage of an agent at once, and the admission decision that
needs them: one implementation, driven by the Serve controller thread of a staged service
(agentc/serving/staged.py) and by the simulator (agentc/serving/simulate.py).

Each stage runs agentc's `ScalePolicy` (agentc/serving/autoscale.py) with its own service
time per visit (predicted, then measured) and price. What differs is the arrival rate each
stage's policy sees:

- joint (agentc's): every stage counts the requests that reached the ingress (admitted or
  refused: both are demand), times its visits per request. A burst reaches every stage's decision at the moment it reaches the ingress,
  so replicas of the last stage of a chain start together with the first: no cold start
  cascades down the chain.
- reactive (what per-deployment autoscalers do): each stage counts the calls that reached
  it. A stage downstream of a cold one sees its burst only once the upstream replicas are up
  and serving: the starts add up along the chain.
"""

from __future__ import annotations

import dataclasses
import math

from agentc.serving.autoscale import ScalePolicy
from agentc.serving.stages import StageGraph

JOINT, REACTIVE = "joint", "reactive"
# Calls a stage replica takes at once (Serve's max_ongoing_requests): the staged service's and
# the simulator's, which must agree (agentc/serving/staged.py says why two).
SLOTS = 2


@dataclasses.dataclass
class StageScaler:
    graph: StageGraph
    policy: ScalePolicy  # the template: sla, start, bounds; service_s is set per stage
    mode: str = JOINT
    start_s: dict[str, float] = dataclasses.field(default_factory=dict)  # per stage, if they differ
    # Per stage that batches: replica-seconds a call costs at the batch its replicas are sized
    # for, over the call alone (agentc/serving/batching.py `capacity`).
    factors: dict[str, float] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        if self.mode not in (JOINT, REACTIVE):
            raise ValueError(f"scaling mode: expected {JOINT} or {REACTIVE}, got {self.mode!r}")
        self.visits = {s: self.graph.visits(s) for s in self.graph.stages}
        self.policies = {s: dataclasses.replace(self.policy, service_s=self.graph.service_s(s) / self.visits[s]
                                                * self.factors.get(s, 1.0),
                                                start_s=self.start_s.get(s, self.policy.start_s))
                         for s in self.graph.stages}
        self.state: dict[str, dict] = {s: {} for s in self.graph.stages}

    def decide(self, now: float, offered: int, reached: dict[str, int], current: dict[str, int],
               measured: dict[str, float | None] | None = None) -> dict[str, int]:
        """Targets per stage. `offered`: requests that reached the ingress so far; `reached`: calls
        that reached each stage so far; `current`: replicas running or starting; `measured`:
        each stage's service time per visit, where known."""
        targets = {}
        for s, policy in self.policies.items():
            arrivals = offered * self.visits[s] if self.mode == JOINT else reached.get(s, 0)
            m = (measured or {}).get(s)
            targets[s], self.state[s] = policy.decide(self.state[s], now, arrivals, current.get(s, 0),
                                                      m * self.factors.get(s, 1.0) if m else None)
        return targets

    def service_per_visit(self, stage: str, measured: dict[str, float | None] | None = None) -> float:
        m = (measured or {}).get(stage)
        return m if m else self.policies[stage].service_s


def predicted_s(graph: StageGraph, in_flight: dict[str, int], ready: dict[str, int], starting_s: dict[str, float],
                service: dict[str, float], batches: dict | None = None) -> float:
    """A new request's predicted latency now: along its graph, each call waits for the
    stage's calls ahead of it (in flight over ready replicas, each a service time) or, with
    none ready, for the first replica to finish starting (`starting_s` from now: stages
    starting together overlap); then its own service. A stage in `batches` ((max batch,
    slowdown of a call held with b others) per stage) runs up to max batch calls per replica
    at once, each slower: it waits only for the batches ahead of it that are full."""
    end: dict[str, float] = {}
    for c in graph.calls:
        s = c.stage
        size, slow = (batches or {}).get(s, (1, None))
        waiting, replicas = in_flight.get(s, 0), max(ready.get(s, 0), 1)
        own = service[s] * (slow(min(waiting / replicas + 1, size)) if slow else 1.0)  # held with the others
        ahead = math.floor(waiting / (replicas * size))  # full rounds before it
        begin = max((end[a] for a in c.after), default=0.0)
        if ready.get(s, 0) > 0:
            begin += ahead * own
        else:  # the stage's first replica is starting: from now, not from the call's turn
            begin = max(begin, starting_s.get(s, 0.0)) + ahead * own
        end[c.node] = begin + own
    return max(end.values(), default=0.0) + graph.host_s


def refuse(predicted: float, deadline_s: float | None, margin: float) -> float | None:
    """None to admit; else the seconds to suggest in Retry-After (as agentc/serving/http_api.py)."""
    if deadline_s is None:
        return None
    over = predicted - deadline_s * (1 + margin)
    return None if over <= 0 else max(1.0, over)
