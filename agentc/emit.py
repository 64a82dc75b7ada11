"""Traced `Graph` -> `agent` dialect module.

Every op carries the location `"node"("graph.py":line:0)`, so any later diagnostic names
the node and the user's line. Branch bodies become private functions that `agent.if`
references; the values a branch uses from outside are passed to it as arguments.
"""

from __future__ import annotations

import json

from torch_mlir import ir

from agentc.dialects import context
from agentc.frontend.graph import BOOL, TEXT, AgentError, Graph, Node, SourceLoc, TensorType


def mlir_type(t) -> str:
    if t == TEXT:
        return "!agent.text"
    if t == BOOL:
        return "i1"
    if isinstance(t, TensorType):
        return t.mlir()
    raise AgentError(f"no MLIR type for {t!r}")


def loc_str(name: str, loc: SourceLoc) -> str:
    return f"loc({json.dumps(name)}({json.dumps(loc.file)}:{loc.line}:0))"


def _attr(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return f"{v} : i64"
    if isinstance(v, str):
        return json.dumps(v)
    raise AgentError(f"unsupported attribute value {v!r}")


class _Emitter:
    def __init__(self):
        self.funcs: list[str] = []

    def func(self, g: Graph, name: str, params: list, public: bool) -> None:
        names: dict[int, str] = {}
        sig = []
        for i, v in enumerate(params):
            names[id(v)] = f"%arg{i}"
            sig.append(f"%arg{i}: {mlir_type(v.type)}")
        lines = []
        for n in g.nodes:
            lines.append(self.op(n, names, name))
        rets = ", ".join(names[id(o)] for o in g.outputs)
        types = ", ".join(mlir_type(o.type) for o in g.outputs)
        attrs = []
        if public and g.sla_ms is not None:
            attrs.append(f"agent.sla_ms = {float(g.sla_ms)} : f64")
        arg_names = [v.name for v in params if v.name] if public else []
        if arg_names:
            attrs.append("agent.input_names = [" + ", ".join(json.dumps(a) for a in arg_names) + "]")
        attr_str = f" attributes {{{', '.join(attrs)}}}" if attrs else ""
        vis = "" if public else "private "
        loc = loc_str(g.name, g.loc) if g.loc else ""
        body = "\n".join(lines)
        self.funcs.append(
            f"func.func {vis}@{name}({', '.join(sig)}) -> ({types}){attr_str} {{\n{body}\n"
            f"  return {rets} : {types}\n}} {loc}"
        )

    def op(self, n: Node, names: dict, func_name: str) -> str:
        for v in n.inputs:
            if id(v) not in names:
                raise AgentError(f"{n.where()}: uses a value that is not available here ({v.describe()})")
        operands = [names[id(v)] for v in n.inputs]
        in_types = [mlir_type(v.type) for v in n.inputs]
        attrs = dict(n.attrs)
        if n.op == "if":
            operands, in_types = self.branches(n, names, operands, in_types, func_name, attrs)
        res = f"%{n.name}"
        for i, r in enumerate(n.results):
            names[id(r)] = f"{res}#{i}" if len(n.results) > 1 else res
        out_types = [mlir_type(r.type) for r in n.results]
        attr_items = []
        for k, v in attrs.items():
            attr_items.append(f"{k} = {v}" if k.endswith("_branch") else f"{k} = {_attr(v)}")
        if n.after:
            attr_items.append("after = [" + ", ".join(json.dumps(a) for a in n.after) + "]")
        attr_str = " {" + ", ".join(attr_items) + "}" if attr_items else ""
        lhs = f"{res}:{len(n.results)} = " if len(n.results) > 1 else f"{res} = "
        return (f"  {lhs}\"agent.{n.op}\"({', '.join(operands)}){attr_str} : "
                f"({', '.join(in_types)}) -> ({', '.join(out_types)}) {loc_str(n.name, n.loc)}")

    def branches(self, n: Node, names, operands, in_types, func_name, attrs):
        """Outline both sides; captured outer values become arguments (text only)."""
        captured = []
        for g in n.branches:
            for inner in g.all_nodes():
                for v in inner.inputs:
                    if id(v) in names and all(v is not c for c in captured):
                        captured.append(v)
        for v in captured:
            if v.type != TEXT:
                raise AgentError(f"{n.where()}: a branch may only use text values from outside it, "
                                 f"but uses {mlir_type(v.type)} from {v.describe()}")
        for label, g in zip(("then", "else"), n.branches):
            fname = f"{func_name}__{n.name}_{label}"
            self.func(g, fname, captured, public=False)
            attrs[f"{label}_branch"] = f"@{fname}"
        return operands + [names[id(v)] for v in captured], in_types + [mlir_type(v.type) for v in captured]


def agent_ir_text(g: Graph) -> str:
    em = _Emitter()
    em.func(g, g.name, g.inputs, public=True)
    return "module {\n" + "\n".join(em.funcs) + "\n}\n"


def emit_agent_ir(g: Graph, ctx: ir.Context | None = None) -> ir.Module:
    """Build and verify the agent-level module; a verifier failure becomes an AgentError
    naming the node and line."""
    ctx = ctx or context()
    text = agent_ir_text(g)
    with ctx:
        try:
            module = ir.Module.parse(text)
            module.operation.verify()
        except ir.MLIRError as e:
            raise AgentError(format_diagnostics(e)) from None
    return module


def format_diagnostics(e: ir.MLIRError) -> str:
    """One line per diagnostic: `graph.py:12: node 'x': message`."""
    out = []
    for d in e.error_diagnostics or []:
        out.append(f"{describe_loc(d.location)}: {d.message}")
    return "\n".join(out) or str(e).splitlines()[0]


def describe_loc(loc) -> str:
    s = str(loc)  # loc("name"("file":line:col))
    import re

    m = re.match(r'loc\("([^"]*)"\("([^"]*)":(\d+):\d+\)\)', s)
    if m:
        return f"{m.group(2)}:{m.group(3)}: node '{m.group(1)}'"
    m = re.match(r'loc\("([^"]*)":(\d+):\d+\)', s)
    if m:
        return f"{m.group(1)}:{m.group(2)}"
    return s
