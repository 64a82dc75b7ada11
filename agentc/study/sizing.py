"""How many replicas each stage of a placed agent needs at an arrival rate so that the P95
latency meets the SLA, by queueing theory (checked against the event simulator for the
chosen fleets: agentc/study/check.py).

A stage is one model on one device type; each replica is one device serving one call at a
time, fed by one queue (the staged service with one call per replica, and the simulator's
`slots=1`). Requests arrive as a Poisson process, so a stage with c replicas is an M/M/c
queue: a call waits with probability C(c, a) (Erlang C, a = offered load), and then for an
exponential time of rate (c - a) / mean service. A request's P95 is taken as its longest path
with every call's P95 wait added: an upper bound, as waits at different stages rarely peak
together. Every hop between two graph nodes crosses the network (each stage runs on its own
server): `HOP_S` plus the bytes over `NETWORK_BPS`.

Replicas are added one at a time to the stage whose P95 wait is longest on the critical
path, until the SLA holds or a type reaches `MAX_PER_TYPE`. The sizing does not depend on
prices, so one sizing serves every price basis.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from agentc.study.profile import AgentProfile

HOP_S = 100e-6  # one network hop inside a data centre (an input)
NETWORK_BPS = 25e9 / 8  # 25 Gb/s Ethernet between servers (an input)
MAX_PER_TYPE = 512  # the search's stated maximum of devices of one type in a fleet
PERCENTILE = 0.95


@dataclass(frozen=True)
class Sized:
    """One placement (call node -> device type, or an LLM call's (prefill type, decode
    type)) at one arrival rate."""

    assignment: tuple[tuple[str, object], ...]
    replicas: dict[str, int]  # stage (model@type) -> replicas
    counts: dict[str, int]  # device type -> devices
    busy: dict[str, float]  # device type -> busy device-seconds per second (rate x service)
    p95_s: float  # predicted P95 latency
    unloaded_s: float
    feasible: bool

    def cost_per_hour(self, prices: dict[str, float]) -> float | None:
        if any(t not in prices for t in self.counts):
            return None
        return sum(n * prices[t] for t, n in self.counts.items())

    def utilisation(self) -> dict[str, float]:
        return {t: self.busy[t] / n for t, n in self.counts.items()}

    def grown(self, stage: str) -> Sized:
        """A replica more at `stage` (a twentieth more where it has many)."""
        replicas = {**self.replicas, stage: self.replicas[stage] + max(1, self.replicas[stage] // 20)}
        return replace(self, replicas=replicas, counts=type_counts(replicas))

    def busiest(self, rate: float, profile: AgentProfile) -> str:
        """The stage with the highest load per replica."""
        load, _ = stage_loads(profile, dict(self.assignment), rate)
        return max(self.replicas, key=lambda st: load[st] / self.replicas[st])


def parts(n, where: str | tuple[str, str]) -> list[tuple[str, float]]:
    """A call's (stage, service seconds) in order: one, or an LLM call split across two types
    (`where` = (prefill type, decode type)): its prefill, then its decode steps, which first
    receive the KV caches over the network."""
    if isinstance(where, tuple) and where[0] != where[1]:
        tp, td = where
        decode = n.on[td].service_s - n.prefill[td] + n.kv_bytes / NETWORK_BPS
        return [(stage_of(n.model + ":prefill", tp), n.prefill[tp]), (stage_of(n.model + ":decode", td), decode)]
    t = where[0] if isinstance(where, tuple) else where
    return [(stage_of(n.model, t), n.on[t].service_s)]


def stage_loads(profile: AgentProfile, where: dict, rate: float) -> tuple[dict[str, float], dict[str, int]]:
    """Offered load (busy replicas) and visits per request of each stage."""
    load: dict[str, float] = {}
    visits: dict[str, int] = {}
    for n in profile.calls:
        for st, service in parts(n, where[n.name]):
            load[st] = load.get(st, 0.0) + rate * service
            visits[st] = visits.get(st, 0) + 1
    return load, visits


def type_counts(replicas: dict[str, int]) -> dict[str, int]:
    out: dict[str, int] = {}
    for st, n in replicas.items():
        t = st.rsplit("@", 1)[1]
        out[t] = out.get(t, 0) + n
    return out


def erlang_c(c: int, a: float) -> float:
    """Probability that a call waits in an M/M/c queue with offered load a < c."""
    if a <= 0:
        return 0.0
    term, total = 1.0, 1.0  # a^k / k!, summed for k < c
    for k in range(1, c):
        term *= a / k
        total += term
    last = term * a / c * c / (c - a)  # a^c / c! * c / (c - a)
    return last / (total + last)


def wait_p95(c: int, a: float, mean_s: float) -> float:
    if a >= c:
        return math.inf
    p = erlang_c(c, a)
    tail = 1 - PERCENTILE
    return 0.0 if p <= tail else mean_s / (c - a) * math.log(p / tail)


def stage_of(model: str, t: str) -> str:
    return f"{model}@{t}"


def latency(profile: AgentProfile, where: dict, waits: dict[str, float],
            replicas: dict[str, int] | None = None) -> tuple[float, list[str]]:
    """Longest path (seconds) with each call's wait added, and the stages on it. With
    `replicas`, one request's calls share each stage's replicas: a call starts on the first
    replica its request left free (a fan-out's branches take turns once they outnumber
    them); without, every call has a replica of its own."""
    end: dict[str, float] = {}
    path: dict[str, list[str]] = {}
    free: dict[str, list[float]] = {st: [0.0] * n for st, n in (replicas or {}).items()}
    for n in profile.nodes:
        start, via = 0.0, []
        for p, nbytes in n.preds.items():
            at = end[p] + HOP_S + nbytes / NETWORK_BPS
            if at > start:
                start, via = at, path[p]
        if n.is_call:
            at, stages = start, []
            for i, (st, service) in enumerate(parts(n, where[n.name])):
                at += HOP_S if i else 0.0
                if replicas:
                    k = min(range(len(free[st])), key=free[st].__getitem__)
                    at = max(at, free[st][k])
                at += waits.get(st, 0.0) + service
                if replicas:
                    free[st][k] = at
                stages.append(st)
            end[n.name] = at
            path[n.name] = via + stages
        else:
            end[n.name] = start + n.host_s
            path[n.name] = via
    last = max(end, key=end.get)
    return end[last], path[last]


def _p95(profile, where, replicas, load, mean, visits) -> tuple[float, str | None]:
    """The predicted P95, and the stage on its path that a replica helps most (None: none
    would: no wait and no turns on the path)."""
    waits = {st: wait_p95(replicas[st], load[st], mean[st]) for st in load}
    p95, on_path = latency(profile, where, waits, replicas)
    gain = {st: waits[st] + (mean[st] if visits[st] > replicas[st] else 0.0) for st in set(on_path)}
    worst = max(gain, key=gain.get, default=None)
    return p95, worst if worst is not None and gain[worst] > 0 else None


def size(profile: AgentProfile, where: dict, rate: float, sla_s: float) -> Sized:
    """The fewest replicas per stage (greedy, see the module docstring) for `where` at `rate`."""
    load, visits = stage_loads(profile, where, rate)
    mean = {st: load[st] / (rate * visits[st]) for st in load}
    replicas = {st: max(1, math.floor(a) + 1) for st, a in load.items()}
    unloaded, _ = latency(profile, where, {})

    feasible = unloaded <= sla_s
    p95 = unloaded
    while feasible:
        p95, worst = _p95(profile, where, replicas, load, mean, visits)
        if p95 <= sla_s:
            break
        if worst is None or type_counts(replicas)[worst.rsplit("@", 1)[1]] >= MAX_PER_TYPE:
            feasible = False
            break
        replicas[worst] += 1
    busy: dict[str, float] = {}
    for st, a in load.items():
        t = st.rsplit("@", 1)[1]
        busy[t] = busy.get(t, 0.0) + a
    return Sized(tuple(sorted(where.items())), dict(replicas), type_counts(replicas), busy, p95, unloaded, feasible)
