"""Run a traced agent directly in PyTorch/NumPy, before any decomposition or compilation.

This is the reference that compiled runs are checked against: whole-model PyTorch calls
(the LLM recomputes its full sequence at every step, with no KV cache), NumPy top-k, and
the same host semantics for text ops and tools.
"""

from __future__ import annotations

import re

import numpy as np

from agentc.frontend.graph import Graph, Value
from agentc.models import registry


def run_reference(g: Graph, inputs: dict[str, str], values: dict | None = None) -> dict:
    """Returns {"outputs": [...], "values": {node_name: first result}}."""
    env: dict[int, object] = {}
    seen = values if values is not None else {}
    for v in g.inputs:
        env[id(v)] = inputs[v.name]
    _run_nodes(g, env, seen)
    return {"outputs": [env[id(o)] for o in g.outputs], "values": seen}


def _run_nodes(g: Graph, env: dict, seen: dict) -> None:
    for n in g.nodes:
        args = [env[id(v)] for v in n.inputs]
        out = _eval(n, args, g, env, seen)
        if n.op == "module" and len(n.results) > 1:  # a module returning several tensors
            for r, o in zip(n.results, out):
                env[id(r)] = o
            out = out[0]
        else:
            env[id(n.results[0])] = out
        seen[n.name] = out


def _eval(n, args, g: Graph, env, seen):
    a = n.attrs
    if n.op == "format":
        return a["template"].format(*args)
    if n.op == "join":
        return a["separator"].join(args)
    if n.op == "tokenize":
        return registry.encoder(a["model"]).tokenize(args[0])
    if n.op == "embed":
        return registry.encoder(a["model"]).reference_embed(args[0])
    if n.op == "vector_search" and g.indexes[a["index"]].search == "ann":
        from agentc.frontend import ann_index

        index = g.indexes[a["index"]]
        return ann_index.search(ann_index.load(index.ann_bytes), args[0], a["k"])
    if n.op == "vector_search":
        scores = args[0] @ g.indexes[a["index"]].embeddings.T
        order = np.argsort(-scores[0], kind="stable")[: a["k"]]
        return order[None].astype(np.int32)
    if n.op == "passages":
        return g.indexes[a["index"]].lookup(args[0])
    if n.op == "module":
        import torch

        with torch.no_grad():
            out = g.modules[a["callee"]](*[torch.from_numpy(np.array(x)) for x in args])
        return tuple(o.numpy() for o in out) if isinstance(out, (tuple, list)) else out.numpy()
    if n.op == "rerank":
        idx = np.asarray(args[1]).ravel()
        texts = [g.indexes[a["index"]].passages[int(i)] for i in idx]
        scores = registry.reranker(a["model"]).reference_scores(args[0], texts)
        return idx[np.argsort(-scores, kind="stable")][None].astype(np.int32)
    if n.op == "llm":
        options = {k: a[k] for k in ("temperature", "top_k", "top_p", "seed", "stop") if k in a}
        return registry.decoder(a["model"]).reference_generate(args[0], a["max_tokens"], **options)
    if n.op == "tool":
        out = g.tools[a["callee"]](*args)
        if not isinstance(out, str):  # as the runtime: a tool returns text
            raise TypeError(f"tool '{a['callee']}' returned {type(out).__name__}, not text")
        return out
    if n.op == "contains":
        return re.search(a["pattern"], args[0]) is not None
    if n.op == "if":
        branch = n.branches[0] if args[0] else n.branches[1]
        sub_env = dict(env)
        _run_nodes(branch, sub_env, seen)
        out: Value = branch.outputs[0]
        return sub_env[id(out)]
    raise ValueError(f"reference: no semantics for op '{n.op}'")
