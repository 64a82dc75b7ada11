"""What each call of an agent costs on each device type: the study's one pass through the
compiler per agent.

The agent is lowered once at step granularity (one operator per prefill and per decode
chunk: what a stage replica runs when its model has a device to itself), and every kernel is
priced on one device of every type with the cost model placement uses
(`agentc.cost.estimate`: measured profiles where the type has one, datasheet rates scaling
a measured profile where not, calibration records where `agentc calibrate` left some).
A call (a graph node with device work, agentc/serving/stages.py) on a type is then the sum
of its operators there; a type that cannot hold the call's weights or compute it right has
no entry for it.
"""

from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from agentc.placement.place import HOST
from agentc.serving.stages import Call, node_of, stage_graph


@dataclass(frozen=True)
class Node:
    """A graph node of the agent: a call (device work, priced per type) or host work (the
    ingress's: tokenizers, formatting, tools at their declared latency)."""

    name: str
    model: str  # what a call runs ("" for host work)
    host_s: float  # host work's seconds (0 for a call)
    on: dict[str, Call]  # device type -> the call priced there (empty for host work)
    preds: dict[str, int] = field(default_factory=dict)  # node it waits for -> bytes it sends
    # An LLM call's prefill (with its tokenizer and first token) per type, and the bytes its
    # decode steps read from it (the KV caches): what splitting it across two devices moves.
    prefill: dict[str, float] = field(default_factory=dict)
    kv_bytes: int = 0

    @property
    def is_call(self) -> bool:
        return bool(self.model)

    @property
    def splits(self) -> bool:
        return bool(self.prefill)


def is_prefill(op_name: str, node: str) -> bool:
    """The part of an LLM call before its decode steps: tokenizer, prefill, first token."""
    return op_name[len(node) + 1:].startswith(("tokenize", "prefill", "sample0"))


@dataclass(frozen=True)
class AgentProfile:
    agent: str
    graph: str
    nodes: tuple[Node, ...]  # topological
    profiles: dict[str, str]  # device type -> the calibration profile that priced it ("" if none)

    @property
    def calls(self) -> tuple[Node, ...]:
        return tuple(n for n in self.nodes if n.is_call)


def universe_yaml(types: list[str], out: Path) -> Path:
    """A cluster file with one device of each type and nothing between them: the estimate
    needs only the devices (the price is a placeholder: the study prices fleets itself,
    agentc/study/prices.py)."""
    devices = [{"type": t, "cost_per_hour": 1.0} for t in types]
    out.write_text(yaml.safe_dump({"host": {"threads": 8}, "devices": devices}, sort_keys=False))
    return out


def profile_agent(graph: str, types: list[str]) -> AgentProfile:
    from agentc.cost.estimate import estimate
    from agentc.ir.lower import lower
    from agentc.placement.cluster_file import load_cluster
    from agentc.placement.place import build_taskgraph

    with tempfile.TemporaryDirectory() as tmp:
        cluster = load_cluster(universe_yaml(types, Path(tmp) / "universe.yaml"))
    low = lower(graph, cluster=cluster, granularity="step")
    call_times, weights = estimate(low, cluster)
    tg = build_taskgraph(low.ops, cluster, call_times, weights)
    name_type = {d.name: d.type for d in cluster.devices.values()}
    by_type: dict[str, dict[str, Call]] = {t: {} for t in types}
    node = {op.name: node_of(op.name) for op in low.ops}
    llm = {node[op.name] for op in low.ops if op.name[len(node[op.name]) + 1:].startswith("prefill")}
    prefill: dict[str, dict[str, float]] = {n: {} for n in llm}
    for dev, t in name_type.items():
        ops = []
        for op in low.ops:
            cost = tg.tasks[op.name].cost
            seconds = cost.get(HOST if op.kind != "call" else dev, math.inf)
            ops.append({**op.to_json(), "device": dev if op.kind == "call" else HOST, "start": 0.0, "end": seconds})
            if node[op.name] in llm and is_prefill(op.name, node[op.name]):
                prefill[node[op.name]][t] = prefill[node[op.name]].get(t, 0.0) + seconds
        for c in stage_graph(ops, {dev: t}, {dev: 0.0}, low.graph.name).calls:
            if math.isfinite(c.service_s):
                by_type[t][c.node] = c
    order = list(dict.fromkeys(node[op.name] for op in low.ops))
    model = {node[op.name]: op.callee.split("__", 1)[0] for op in low.ops if op.kind == "call"}
    host = {n: 0.0 for n in order}
    for op in low.ops:
        if op.kind != "call":
            host[node[op.name]] += tg.tasks[op.name].cost[HOST]
    preds: dict[str, dict[str, int]] = {n: {} for n in order}
    kv = {n: 0 for n in llm}  # an LLM call's prefill -> its decode steps: the KV caches
    for (u, v), nbytes in tg.edges.items():
        a, b = node[u], node[v]
        if a != b:
            preds[b][a] = preds[b].get(a, 0) + nbytes
        elif a in llm and is_prefill(u, a) and not is_prefill(v, a):
            kv[a] += nbytes
    nodes = tuple(Node(n, model.get(n, ""), 0.0 if n in model else host[n],
                       {t: by_type[t][n] for t in types if n in by_type[t]} if n in model else {}, preds[n],
                       {t: p for t, p in prefill.get(n, {}).items() if n in by_type[t]}, kv.get(n, 0))
                  for n in order)
    profiles = {name_type[d.name]: Path(d.spec.profile).name if d.spec.profile else ""
                for d in cluster.devices.values()}
    return AgentProfile(low.graph.name, graph, nodes, profiles)
