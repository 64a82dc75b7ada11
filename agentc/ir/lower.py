"""The lowering stage: graph.py -> traced Graph -> agent IR -> operators (decompose-agent-ops)
-> the operator list placement reads. One entry, `lower`, returning a `Lowered`."""

from __future__ import annotations

from dataclasses import dataclass, field

from torch_mlir import ir

from agentc.cost import decode_chunk
from agentc.frontend.trace import trace_file
from agentc.ir import context
from agentc.ir.emit import emit_agent_ir
from agentc.ir.plan import build_plan
from agentc.passes import run_pass
from agentc.passes.decompose_agent_ops import DecomposeAgentOps
from agentc.placement.cluster import Cluster


@dataclass
class Lowered:
    """An agent after tracing, decomposition and planning: what placement reads."""

    graph: object
    ctx: object
    module: object
    agent_text: str
    weights: dict  # weight group -> {param: array}, what the kernels read (decompose-agent-ops)
    ops: list
    inputs: list[str]
    outputs: list[str]
    funcs: dict
    # implementation symbol -> its Work (FLOPs, bytes, ...), analysed once: placement
    # estimates on one device of each class, then again on the devices it lists
    works: dict = field(default_factory=dict, repr=False)
    digests: dict = field(default_factory=dict, repr=False)  # implementation symbol -> its IR's hash


def lower(graph_path, agent: str | None = None, emit: str | None = None,
          cluster: Cluster | None = None, max_nodes: int | None = None, granularity: str | None = None,
          searches: dict[str, str] | None = None):
    """graph.py -> agent IR -> operators -> plan. With `emit` "agent" or "operators",
    returns that stage's text instead. With `cluster`, LLMs that do not choose a granularity
    get the cluster's (`llm_granularity`), decode chunks the cost model's
    (agentc.cost.decode_chunk), and kernels carry only its runtimes' variants;
    without, per-layer operators and every variant. `granularity` overrides the cluster's
    choice (a forced placement pins layers, so it wants them apart). `searches` settles
    indexes with search="auto" ({index: "exact" | "ann"}, agentc.cost.search_choice);
    unsettled, they are searched exactly."""
    granularity = granularity or (llm_granularity(cluster) if cluster is not None else "layer")
    runtimes = cluster_runtimes(cluster) if cluster is not None else None
    graph = trace_file(graph_path, agent, max_nodes)
    for name, choice in (searches or {}).items():
        graph.indexes[name].search = choice  # this trace's index object, made just above
    ctx = context()
    module = emit_agent_ir(graph, ctx)
    agent_text = module.operation.get_asm(enable_debug_info=True)
    if emit == "agent":
        return agent_text
    with ctx:
        decompose = DecomposeAgentOps(indexes=graph.indexes, granularity=granularity, runtimes=runtimes,
                                      modules=graph.modules,
                                      decode_chunk=decode_chunk.chooser(cluster) if cluster is not None else None)
        run_pass(module, decompose)
    if emit == "operators":
        return module.operation.get_asm(enable_debug_info=True)
    with ctx:
        ops, inputs, outputs = build_plan(module, graph.name)
        funcs = {ir.StringAttr(o.attributes["sym_name"]).value: o for o in module.body.operations
                 if o.operation.name == "func.func"}
    return Lowered(graph, ctx, module, agent_text, decompose.weights, ops, inputs, outputs, funcs)


def cluster_runtimes(cluster: Cluster) -> frozenset[str]:
    """The runtimes a build for `cluster` has devices of: kernels carry variants for these."""
    return frozenset(g.runtime for g in cluster.groups.values() if g.runtime)


def llm_granularity(cluster: Cluster) -> str:
    """Per-layer LLM operators exist so that layers and steps can go to different devices;
    with one device there is nothing to split, and per-step operators make ~14x fewer device calls
    (measured side by side: `experiments/rag-pipeline/rag_e2e.py --granularity`, docs/gpu-h200.md)."""
    return "step" if cluster.size == 1 else "layer"
