"""An LLM's decode step with its linears as calls of the quantized CPU kernels
(agentc.cpu_kernels.gemv), for a model whose file holds quantized blocks (GGUF Q4_1/Q8_0).

torch.export captures the generic import's `decode` (transformers' layers called with the
weights as arguments). Every `aten.linear` whose weight has blocks becomes a call; linears
reading the same value in the same form become one call over their stacked rows (q, k and v;
gate and up), since a call's cost on a decode step is mostly its dispatch. Each run of other
operators between calls is exported through torch-mlir as a function of its own. The step
is then composed with the MLIR bindings (calls in the graph's order) and the pieces inlined,
so the result is one function like any exported kernel, only calling the kernels'
declarations, which a cpu device module defines (outline-device-modules).

Its arguments are the float32 step's (every weight, then the activations) with the packed
blocks between them, so the same wrapper calls either form; the float32 form takes the
blocks and ignores them (`with_unread_weights`), and each device compiles only what it uses.
Nothing here is specific to an architecture: tests check it against transformers on random
GGUF checkpoints.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from agentc import store
from agentc.cpu_kernels import blocks as kblocks
from agentc.cpu_kernels.gemv import Gemv
from agentc.lazy import lazy_import
from agentc.models.export import as_module, linalg_text

torch = lazy_import("torch")

_DTYPES = {"float32": "f32", "int32": "i32", "int64": "i64", "bool": "i1"}
PARTS = ("values", "scales", "offsets")  # a call's three block arguments (agentc.cpu_kernels.gemv)


@dataclass
class QuantizedStep:
    text: str  # module holding func @<name>: (weights..., blocks..., activations...) -> the step's results
    params: dict[str, np.ndarray]  # the packed blocks, in argument order (after the float32 weights)


def mlir_type(t) -> str:
    dims = "x".join(map(str, t.shape))
    return f"tensor<{dims}{'x' if t.dim() else ''}{_DTYPES[str(t.dtype).removeprefix('torch.')]}>"


def capture(fn, args):
    """(fx GraphModule of fn over args, every node's value on args)."""
    class Recorder(torch.fx.Interpreter):
        def run_node(self, n):
            out = super().run_node(n)
            self.values[n] = out
            return out

    with torch.no_grad():
        gm = torch.export.export(as_module(fn), tuple(args)).module()
        rec = Recorder(gm)
        rec.values = {}
        rec.run(*args)
    return gm, rec.values


def plan(gm, blocks_of: dict) -> list[tuple[str, list]]:
    """The graph as steps ("piece", nodes) and ("linears", linear nodes reading one value in
    one form), in an order that computes every value before its use. `blocks_of`: weight
    placeholder -> its Blocks."""
    nodes = [n for n in gm.graph.nodes if n.op not in ("placeholder", "output")]
    arguments = {n for n in gm.graph.nodes if n.op == "placeholder"}

    def quantized(n):
        if n.target != torch.ops.aten.linear.default or n.args[1] not in blocks_of:
            return False
        bias = n.args[2] if len(n.args) > 2 else None
        return kblocks.fits(n.args[1].meta["val"].shape[-1]) and (bias is None or bias in arguments)

    linear = [n for n in nodes if quantized(n)]
    by_input: dict = {}
    for n in linear:
        by_input.setdefault((n.args[0], blocks_of[n.args[1]].form), []).append(n)
    group_of = {n: g for g in by_input.values() for n in g}
    steps, piece, done = [], [], set()
    for n in nodes:
        if n in done:
            continue
        if n in group_of:
            if piece:
                steps.append(("piece", piece))
                piece = []
            steps.append(("linears", group_of[n]))
            done.update(group_of[n])
        else:
            piece.append(n)
    if piece:
        steps.append(("piece", piece))
    return steps


def piece_module(gm, nodes: list):
    """A GraphModule of `nodes`: (it, the outside values it reads, the values it hands on)."""
    inside = set(nodes)
    graph = torch.fx.Graph()
    env, inputs = {}, []

    def arg(v):
        if v not in env:
            env[v] = graph.placeholder(f"in{len(inputs)}")
            inputs.append(v)
        return env[v]

    for n in nodes:
        for v in n.all_input_nodes:
            if v not in inside:
                arg(v)
        env[n] = graph.node_copy(n, lambda v: env[v] if v in env else arg(v))
    outputs = [n for n in nodes if any(u not in inside for u in n.users)]  # the graph's output node included
    graph.output(tuple(env[n] for n in outputs))
    return torch.fx.GraphModule(gm, graph), inputs, outputs


def packed(group_blocks: list) -> list[np.ndarray]:
    """One call's block arguments: its linears' blocks stacked, packed for the kernel."""
    form = group_blocks[0].form
    q = np.concatenate([b.q for b in group_blocks])
    d = np.concatenate([b.d for b in group_blocks])
    if form == "q4_1":
        return kblocks.pack_q4_1(q, d, np.concatenate([b.m for b in group_blocks]))
    return kblocks.pack_q8_0(q, d)


def quantized_step(fn, weights: dict[str, np.ndarray], acts: list[np.ndarray], matcher, name: str,
                   key: dict) -> QuantizedStep | None:
    """`fn(*weights, *acts)` (a decode step) with its linears as kernel calls where
    `matcher()` (an agentc.models.hf.gguf_blocks.Matcher, made only when needed) finds their
    blocks; None where it finds none. Cached whole (text and packed blocks) under `key`,
    which must name what fn's graph and the blocks depend on: a warm compile neither
    captures the step nor reads the file's blocks."""
    full_key = dict(key, name=name, packing=hashlib.sha256(Path(kblocks.__file__).read_bytes()).hexdigest(), v=3)
    path = store.cached("quantized-steps", full_key,
                        lambda out: _save(_quantized(fn, weights, acts, matcher(), name), out), ".npz")
    with np.load(path) as z:
        if not z["text"].size:
            return None
        params = {str(n): z[f"p{i}"] for i, n in enumerate(z["names"])}
        return QuantizedStep(z["text"].tobytes().decode(), params)


def _save(q: QuantizedStep | None, out) -> None:
    if q is None:
        np.savez(out, text=np.zeros(0, np.uint8))
        return
    np.savez(out, text=np.frombuffer(q.text.encode(), np.uint8), names=np.array(list(q.params)), **{f"p{i}": a for i, a in enumerate(q.params.values())})


def _quantized(fn, weights, acts, matcher, name: str) -> QuantizedStep | None:
    names = list(weights)
    found = {n: b for n, w in weights.items() if w.ndim == 2 and (b := matcher.find(w)) is not None}
    if not found:
        return None
    examples = [torch.from_numpy(np.array(w, np.float32)) for w in weights.values()]
    examples += [torch.from_numpy(np.array(a)) for a in acts]  # distinct tensors: export merges aliased inputs
    gm, values = capture(fn, examples)
    placeholders = [n for n in gm.graph.nodes if n.op == "placeholder"]
    blocks_of = {placeholders[i]: found[n] for i, n in enumerate(names) if n in found}
    steps = plan(gm, blocks_of)
    groups = [(s, g) for s, (kind, g) in enumerate(steps) if kind == "linears"]
    params: dict[str, np.ndarray] = {}
    calls = []
    for s, group in groups:
        first = names[placeholders.index(group[0].args[1])]
        bl = [blocks_of[n.args[1]] for n in group]
        for part, a in zip(PARTS, packed(bl)):
            params[f"{first}.{bl[0].form}.{part}"] = a
        x = values[group[0].args[0]]
        biased = tuple(len(n.args) > 2 and n.args[2] is not None for n in group)
        calls.append(Gemv(bl[0].form, tuple(x.shape), tuple(int(values[n].shape[-1]) for n in group), biased))
    text = _compose(gm, values, steps, calls, placeholders[:len(names)], list(params.values()), name)
    return QuantizedStep(text, params)


def _compose(gm, values, steps, calls, weight_nodes, block_arrays, name: str) -> str:
    from torch_mlir import ir
    from torch_mlir.dialects import func as func_d
    from torch_mlir.passmanager import PassManager

    placeholders = [n for n in gm.graph.nodes if n.op == "placeholder"]
    acts = placeholders[len(weight_nodes):]
    out_node = next(n for n in gm.graph.nodes if n.op == "output")
    results = torch.utils._pytree.tree_leaves(out_node.args[0])
    with ir.Context(), ir.Location.unknown():
        t = ir.Type.parse
        module = ir.Module.create()
        block_types = [t(x) for x in tensor_types(block_arrays)]
        ins = [t(mlir_type(values[p])) for p in weight_nodes] + block_types + [t(mlir_type(values[p])) for p in acts]
        outs = [t(mlir_type(values[r])) for r in results]
        declared = {}
        with ir.InsertionPoint(module.body):
            for g in calls:
                if g.name not in declared:
                    declared[g.name] = func_d.FuncOp(g.name, ([t(x) for x in g.arg_types()],
                                                              [t(x) for x in g.result_types()]), visibility="private")
            step = func_d.FuncOp(name, (ins, outs))
        entry = step.add_entry_block()
        args = list(entry.arguments)
        env = dict(zip(weight_nodes, args))
        env.update(zip(acts, args[len(weight_nodes) + len(block_types):]))
        blocks = iter(args[len(weight_nodes):len(weight_nodes) + len(block_types)])
        call_of = iter(calls)
        parsed = []  # each piece's module owns its function until it is moved
        for s, (kind, nodes) in enumerate(steps):
            with ir.InsertionPoint(entry):
                if kind == "linears":
                    g = next(call_of)
                    operands = [next(blocks) for _ in PARTS] + [env[nodes[0].args[0]]]
                    operands += [env[n.args[2]] for n, b in zip(nodes, g.biased) if b]
                    call = func_d.CallOp(list(declared[g.name].type.results), ir.FlatSymbolRefAttr.get(g.name), operands)
                    env.update(zip(nodes, call.results))
                    continue
                pm, inputs, outputs = piece_module(gm, nodes)
                if not outputs:
                    continue
                fname = f"{name}__piece{s}"
                p = ir.Module.parse(linalg_text(pm, [values[v] for v in inputs], fname))
                fop = ir.SymbolTable(p.operation)[fname]
                fop.attributes["sym_visibility"] = ir.StringAttr.get("private")
                parsed.append(p)
                module.body.append(fop)
                ftype = ir.FunctionType(ir.TypeAttr(fop.attributes["function_type"]).value)
                call = func_d.CallOp(list(ftype.results), ir.FlatSymbolRefAttr.get(fname), [env[v] for v in inputs])
                env.update(zip(outputs, call.results))
        with ir.InsertionPoint(entry):
            func_d.ReturnOp([env[r] for r in results])
        PassManager.parse("builtin.module(inline{default-pipeline=},symbol-dce)").run(module.operation)
        module.operation.verify()
        return str(module)


def tensor_types(arrays) -> list[str]:
    """The MLIR types of 1-D block arguments (int8 values, float32 scales)."""
    return [f"tensor<{a.size}x{'i8' if a.dtype == np.int8 else 'f32'}>" for a in arrays]


def with_unread_weights(text: str, name: str, n_weights: int, types: list[str]) -> str:
    """The exported function `name` (weights first) taking more weights after its first
    `n_weights`, unread: another form's signature (the quantized form's blocks, a cuda form's
    bfloat16 copies), so that one wrapper calls every form."""
    key = {"text": hashlib.sha256(text.encode()).hexdigest(), "name": name, "n": n_weights, "blocks": types, "v": 1}
    return store.cached_bytes("quantized-steps", key, lambda: _with_unread_weights(text, name, n_weights, types).encode(),
                              ".mlir").decode()


def _with_unread_weights(text: str, name: str, n_weights: int, types: list[str]) -> str:
    from torch_mlir import ir
    from torch_mlir.dialects import func as func_d
    from torch_mlir.passmanager import PassManager

    with ir.Context(), ir.Location.unknown():
        module = ir.Module.parse(text)
        inner = ir.SymbolTable(module.operation)[name]
        ir.SymbolTable.set_symbol_name(inner, f"{name}__f32")
        inner.attributes["sym_visibility"] = ir.StringAttr.get("private")
        ftype = ir.FunctionType(ir.TypeAttr(inner.attributes["function_type"]).value)
        ins = list(ftype.inputs)
        extra = [ir.Type.parse(b) for b in types]
        with ir.InsertionPoint(module.body):
            outer = func_d.FuncOp(name, (ins[:n_weights] + extra + ins[n_weights:], list(ftype.results)))
        entry = outer.add_entry_block()
        a = list(entry.arguments)
        with ir.InsertionPoint(entry):
            call = func_d.CallOp(list(ftype.results), ir.FlatSymbolRefAttr.get(f"{name}__f32"),
                                 a[:n_weights] + a[n_weights + len(extra):])
            func_d.ReturnOp(list(call.results))
        PassManager.parse("builtin.module(inline{default-pipeline=},symbol-dce)").run(module.operation)
        return str(module)
