"""Stages: how a placed agent is served, one Serve deployment per stage.

A stage is one model (or index) on one device type: every graph node whose operators run on
that device with that model's functions is a *call* of the stage. The fan-out agent's six
branches and its summary all call the `tiny-lm` stage (seven visits per request); the RAG
agent calls an encoder stage, a search stage and an LLM stage, one after another. Replicas of
a stage hold that device; a request visits the stages in its graph's order, concurrently where
the graph fans out. Host operators between calls (prompt formatting, joins) stay with the
ingress.

Service times are the placement's predictions per operator (from measured profiles where the
device has one): a call's is the sum of its operators'. An LLM call is split into its prefill
and its per-token step, so a request that generates fewer tokens (a trace's GeneratedTokens)
holds its replica for less: shapes are static, so the prompt costs the same whatever its
length up to the model's budget (a longer one is cut to it), and generation stops at the
end-of-turn token or the call's max_tokens.

`stage_graph(ops, device_types, prices)` is pure: ops in the plan's form (plan.json's "ops",
or `PlanOp.to_json()`), device -> catalog type and $/device-hour.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

STEP = re.compile(r"^(decode|sample|stop)(\d+)(/.*)?$")


@dataclass(frozen=True)
class Call:
    """One visit of a request to a stage: a graph node with device work."""

    node: str
    stage: str
    after: tuple[str, ...]  # calls it waits for (through host operators)
    service_s: float  # all of it, every token generated
    prefill_s: float = 0.0  # an LLM call: prefill and first token ...
    step_s: float = 0.0  # ... then this per further token
    max_tokens: int = 0

    def service(self, generated_tokens: int | None = None) -> float:
        """Seconds on the replica for a request that generates `generated_tokens` (None:
        all max_tokens, what the placement assumed; capped to max_tokens)."""
        if not self.max_tokens or generated_tokens is None:
            return self.service_s
        n = min(max(1, int(generated_tokens)), self.max_tokens)
        return self.prefill_s + (n - 1) * self.step_s


@dataclass(frozen=True)
class Stage:
    name: str
    devices: tuple[str, ...]  # the plan's devices its calls ran on
    device_type: str  # what a replica needs (a catalog id or a local kind)
    price_per_hour: float  # of one replica's devices
    nodes: tuple[str, ...]


@dataclass(frozen=True)
class StageGraph:
    agent: str
    stages: dict[str, Stage]
    calls: tuple[Call, ...]  # in an order where every call comes after those it waits for
    host_s: float = 0.0  # host operators on the longest path, added to every request
    sla_s: float | None = None
    extra: dict = field(default_factory=dict)

    def visits(self, stage: str) -> int:
        return sum(c.stage == stage for c in self.calls)

    def service_s(self, stage: str) -> float:
        """Replica-seconds one request costs the stage (all its visits, full generation)."""
        return sum(c.service_s for c in self.calls if c.stage == stage)

    def latency_s(self, service: dict[str, float] | None = None) -> float:
        """The unloaded latency: the longest path of calls (each `service[node]`, else its
        full service) plus the host's share."""
        end: dict[str, float] = {}
        for c in self.calls:
            s = service[c.node] if service and c.node in service else c.service_s
            end[c.node] = max((end[a] for a in c.after), default=0.0) + s
        return max(end.values(), default=0.0) + self.host_s

    def table(self) -> str:
        rows = [f"{'stage':<24} {'device':<18} {'$/h':>7} {'visits':>6} {'service ms':>10}"]
        for s in self.stages.values():
            rows.append(f"{s.name:<24} {s.device_type:<18} {s.price_per_hour:7.3f} {self.visits(s.name):6d} "
                        f"{self.service_s(s.name) * 1e3:10.2f}")
        rows.append(f"unloaded latency {self.latency_s() * 1e3:.2f} ms (host {self.host_s * 1e3:.2f} ms)")
        return "\n".join(rows)


def node_of(op_name: str) -> str:
    return op_name.split("/", 1)[0]


def _model(op: dict) -> str:
    """What a call runs: its functions' model (`tiny_lm__decode` -> `tiny_lm`)."""
    callee = op.get("callee") or ""
    return callee.split("__", 1)[0] if "__" in callee else callee or node_of(op["name"])


def _duration(op: dict) -> float:
    if "end_ms" in op:
        return (op["end_ms"] - op["start_ms"]) / 1e3
    return op["end"] - op["start"]


def stage_graph(ops: list[dict], device_types: dict[str, str], prices: dict[str, float], agent: str = "",
                sla_s: float | None = None) -> StageGraph:
    """Group the plan's operators into stages and calls (see the module docstring)."""
    by_node: dict[str, list[dict]] = {}
    for op in ops:
        by_node.setdefault(node_of(op["name"]), []).append(op)
    producer = {v: node_of(op["name"]) for op in ops for v in op.get("outputs", ())}
    device_nodes = {n for n, nops in by_node.items() if any(o["kind"] == "call" for o in nops)}

    def upstream(node: str, seen: set) -> set[str]:
        """The call nodes `node` waits for, through host-only nodes."""
        found = set()
        for op in by_node[node]:
            for v in list(op.get("inputs", ())) + [g for g, _ in op.get("guards", ())]:
                p = producer.get(v)
                if p is None or p == node or p in seen:
                    continue
                seen.add(p)
                found |= {p} if p in device_nodes else upstream(p, seen)
        return found

    stages: dict[str, dict] = {}
    calls = []
    for node, nops in by_node.items():  # plan order is topological
        if node not in device_nodes:
            continue
        devs = tuple(sorted({o["device"] for o in nops if o["kind"] == "call"}))
        model = next(_model(o) for o in nops if o["kind"] == "call")
        dtype = "+".join(sorted({device_types.get(d, d) for d in devs}))
        name = f"{model}@{dtype}"
        st = stages.setdefault(name, {"devices": set(), "type": dtype, "nodes": [],
                                      "price": sum(prices.get(d, 0.0) for d in devs)})
        st["devices"].update(devs)
        st["nodes"].append(node)
        calls.append(_call(node, name, tuple(sorted(upstream(node, set()))), nops))
    host_s = _host_path(by_node, device_nodes)
    return StageGraph(agent, {n: Stage(n, tuple(sorted(s["devices"])), s["type"], s["price"], tuple(s["nodes"]))
                              for n, s in stages.items()}, tuple(calls), host_s, sla_s)


def _call(node: str, stage: str, after: tuple[str, ...], nops: list[dict]) -> Call:
    total = sum(_duration(o) for o in nops)
    steps: dict[int, float] = {}
    prefill = 0.0
    for o in nops:
        rest = o["name"][len(node) + 1:]
        m = STEP.match(rest)
        if rest.startswith("prefill") or (m and int(m.group(2)) == 0):  # the first token comes with it
            prefill += _duration(o)
        elif m:
            steps[int(m.group(2))] = steps.get(int(m.group(2)), 0.0) + _duration(o)
    if prefill and steps:
        step = sum(steps.values()) / len(steps)
        other = total - prefill - sum(steps.values())  # tokenize, detokenize: per call
        return Call(node, stage, after, total, prefill + other, step, len(steps) + 1)
    return Call(node, stage, after, total)


def _host_path(by_node: dict[str, list[dict]], device_nodes: set[str]) -> float:
    """The host-only nodes' time, all of it on every request's path (an upper bound: they
    are microseconds beside the calls, except tokenizers)."""
    host = [n for n in by_node if n not in device_nodes]
    return math.fsum(_duration(o) for n in host for o in by_node[n]) if host else 0.0


def from_placement(placement, sla_s: float | None = None) -> StageGraph:
    """Stages of a `Placement` (agentc.place / place_file): device types and prices from
    its cluster."""
    cluster = placement.cluster
    types = {n: d.type for n, d in cluster.devices.items()}
    prices = {n: d.spec.cost_per_hour or 0.0 for n, d in cluster.devices.items()}
    sla = sla_s if sla_s is not None else (placement.sla_ms / 1e3 if placement.sla_ms else None)
    g = stage_graph([op.to_json() for op in placement.ops], types, prices, placement.agent, sla)
    g.extra["inputs"] = list(placement.inputs)
    return g


def from_plan(plan: dict) -> StageGraph:
    """Stages of a build's plan.json: replicas need the device's kind; prices from the
    catalog entry of the kind (0 where it has none)."""
    from agentc.cost.catalog import load_catalog

    catalog = load_catalog()
    types = {n: d["runtime"] for n, d in plan["devices"].items()}
    prices = {}
    for n, d in plan["devices"].items():
        entry = catalog.devices.get(d["runtime"])
        prices[n] = (entry.cost_per_hour or 0.0) if entry is not None else 0.0
    sla = plan.get("sla_ms")
    g = stage_graph(plan["ops"], types, prices, plan["agent"], sla / 1e3 if sla else None)
    g.extra["inputs"] = list(plan["inputs"])
    return g
