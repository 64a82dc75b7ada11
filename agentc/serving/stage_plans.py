"""Split a build's plan for a staged service: each call (a graph node with device work, see
agentc/serving/stages.py) becomes a share that a stage replica runs with its own Session
(only that call's devices, modules and weights), and the ingress runs what is left (host
operators, tools) with one `stage` operator per call in the call's place.

A share's inputs and outputs are value ids: what its operators read from outside the call
(inputs and guards), and what the rest of the plan (or the agent's outputs) reads from it.
Values cross as host values (token ids, tensors, text, the skipped value), so a call's
device buffers never leave its replica.
"""

from __future__ import annotations

from agentc.serving.stages import StageGraph, node_of

SHARED = ("agent", "sla_ms", "indexes", "models")


def split(plan: dict, graph: StageGraph) -> tuple[dict, dict[str, dict]]:
    """(the ingress's plan, {call node: its share of the plan})."""
    calls = {c.node: c for c in graph.calls}
    by_node: dict[str, list[dict]] = {}
    for op in plan["ops"]:
        by_node.setdefault(node_of(op["name"]), []).append(op)
    readers: dict[str, set[str]] = {}
    for op in plan["ops"]:
        for v in list(op["inputs"]) + [g for g, _ in op["guards"]]:
            readers.setdefault(v, set()).add(node_of(op["name"]))
    outputs = set(plan["outputs"])
    shares, stage_ops = {}, {}
    for node in calls:
        ops = by_node[node]
        inside = {v for op in ops for v in op["outputs"]}
        ins = list(dict.fromkeys(v for op in ops for v in list(op["inputs"]) + [g for g, _ in op["guards"]]
                                 if v not in inside))
        outs = [v for op in ops for v in op["outputs"] if v in outputs or readers.get(v, set()) - {node}]
        types = {v: t for op in ops for v, t in zip(op["outputs"], op.get("out_types", []))}
        devices = sorted({op["device"] for op in ops if op["kind"] == "call"})
        weights = sorted({w for d in devices for w in plan["devices"][d].get("weights", plan.get("weights", []))})
        shares[node] = {**{k: plan[k] for k in SHARED if k in plan}, "inputs": ins, "input_ids": ins, "outputs": outs,
                        "devices": {d: plan["devices"][d] for d in devices}, "ops": ops, "weights": weights}
        stage_ops[node] = {"name": node, "kind": "stage", "inputs": ins, "outputs": outs,
                           "out_types": [types.get(v, "") for v in outs], "attrs": {"callee": callee(node)},
                           "callee": "", "guards": [], "loc": ops[0].get("loc", ""), "device": "host",
                           "start": min(op["start"] for op in ops), "end": max(op["end"] for op in ops)}
    ingress_ops, placed = [], set()
    for op in plan["ops"]:
        node = node_of(op["name"])
        if node not in calls:
            ingress_ops.append(op)
        elif node not in placed:
            ingress_ops.append(stage_ops[node])
            placed.add(node)
    ingress = {**plan, "devices": {}, "ops": ingress_ops, "weights": []}
    return ingress, shares


def callee(node: str) -> str:
    """The name the ingress's `stage` operator calls its stage by."""
    return "stage:" + node


def stage_plan(stage_nodes: list[str], shares: dict[str, dict]) -> dict:
    """The plan a stage replica loads: every share of the stage's calls together (their
    devices opened once); each call then runs as its own share of it."""
    parts = [shares[n] for n in stage_nodes]
    first = parts[0]
    return {**{k: first[k] for k in SHARED if k in first},
            "inputs": list(dict.fromkeys(v for p in parts for v in p["inputs"])),
            "input_ids": list(dict.fromkeys(v for p in parts for v in p["inputs"])),
            "outputs": list(dict.fromkeys(v for p in parts for v in p["outputs"])),
            "devices": {d: info for p in parts for d, info in p["devices"].items()},
            "ops": [op for p in parts for op in p["ops"]],
            "weights": sorted({w for p in parts for w in p["weights"]})}
