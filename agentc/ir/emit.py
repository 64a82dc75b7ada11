"""Traced `Graph` -> `agent` dialect module, built through the MLIR bindings.

Every op carries its node's name as the `agent.name` attribute (the operator's identity,
which later passes extend: `answer` -> `answer/prefill`) and the location
`"node"("graph.py":line:0)`, so any diagnostic names the node and the user's line. Branch
bodies become private functions that `agent.if` references; the values a branch uses from
outside are passed to it as arguments.
"""

from __future__ import annotations

from torch_mlir import ir
from torch_mlir.dialects import func as func_d

from agentc.frontend.graph import BOOL, TEXT, AgentError, Graph, Node, SourceLoc, TensorType
from agentc.ir import context

NAME = "agent.name"  # the attribute that names an operator


def mlir_type(t) -> ir.Type:
    if t == TEXT:
        return ir.Type.parse("!agent.text")
    if t == BOOL:
        return ir.IntegerType.get_signless(1)
    if isinstance(t, TensorType):
        elem = {"f32": ir.F32Type.get(), "i32": ir.IntegerType.get_signless(32)}[t.dtype]
        return ir.RankedTensorType.get(list(t.shape), elem)
    raise AgentError(f"no MLIR type for {t!r}")


def node_loc(name: str, loc: SourceLoc) -> ir.Location:
    return ir.Location.name(name, childLoc=ir.Location.file(loc.file, loc.line, 0))


def _attr(v) -> ir.Attribute:
    if isinstance(v, bool):
        return ir.BoolAttr.get(v)
    if isinstance(v, int):
        return ir.IntegerAttr.get(ir.IntegerType.get_signless(64), v)
    if isinstance(v, float):
        return ir.FloatAttr.get(ir.F64Type.get(), v)
    if isinstance(v, str):
        return ir.StringAttr.get(v)
    if isinstance(v, (list, tuple)):
        return ir.ArrayAttr.get([_attr(x) for x in v])
    raise AgentError(f"unsupported attribute value {v!r}")


class _Emitter:
    def __init__(self, module: ir.Module):
        self.module = module

    def func(self, g: Graph, name: str, params: list, public: bool) -> None:
        loc = node_loc(g.name, g.loc) if g.loc else ir.Location.unknown()
        ftype = ir.FunctionType.get([mlir_type(v.type) for v in params], [mlir_type(o.type) for o in g.outputs])
        with ir.InsertionPoint(self.module.body), loc:
            f = func_d.FuncOp(name, ftype, visibility=None if public else "private")
            if public and g.sla_ms is not None:
                f.attributes["agent.sla_ms"] = ir.FloatAttr.get(ir.F64Type.get(), float(g.sla_ms))
            if public and any(v.name for v in params):
                f.attributes["agent.input_names"] = ir.ArrayAttr.get(
                    [ir.StringAttr.get(v.name) for v in params if v.name])
            entry = f.add_entry_block()
        values = {id(v): arg for v, arg in zip(params, entry.arguments)}
        with ir.InsertionPoint(entry):
            for n in g.nodes:
                self.op(n, values, name)
            func_d.ReturnOp([values[id(o)] for o in g.outputs], loc=loc)

    def op(self, n: Node, values: dict, func_name: str) -> None:
        for v in n.inputs:
            if id(v) not in values:
                raise AgentError(f"{n.where()}: uses a value that is not available here ({v.describe()})")
        operands = [values[id(v)] for v in n.inputs]
        attrs = {k: _attr(v) for k, v in n.attrs.items()}
        if n.op == "if":
            operands += self.branches(n, values, func_name, attrs)
        if n.after:
            attrs["after"] = ir.ArrayAttr.get([ir.StringAttr.get(a) for a in n.after])
        attrs[NAME] = ir.StringAttr.get(n.name)
        if n.op == "module":  # one required and three optional operands / results
            attrs["operandSegmentSizes"] = ir.DenseI32ArrayAttr.get([1] + [int(i < len(operands)) for i in (1, 2, 3)])
            attrs["resultSegmentSizes"] = ir.DenseI32ArrayAttr.get([1] + [int(i < len(n.results)) for i in (1, 2, 3)])
        op = ir.Operation.create(f"agent.{n.op}", results=[mlir_type(r.type) for r in n.results],
                                 operands=operands, attributes=attrs, loc=node_loc(n.name, n.loc))
        for r, res in zip(n.results, op.results):
            values[id(r)] = res

    def branches(self, n: Node, values: dict, func_name: str, attrs: dict) -> list:
        """Outline both sides; captured outer values become arguments (text only)."""
        captured = []
        for g in n.branches:
            for inner in g.all_nodes():
                for v in inner.inputs:
                    if id(v) in values and all(v is not c for c in captured):
                        captured.append(v)
        for v in captured:
            if v.type != TEXT:
                raise AgentError(f"{n.where()}: a branch may only use text values from outside it, "
                                 f"but uses {mlir_type(v.type)} from {v.describe()}")
        for label, g in zip(("then", "else"), n.branches):
            fname = f"{func_name}__{n.name}_{label}"
            self.func(g, fname, captured, public=False)
            attrs[f"{label}_branch"] = ir.FlatSymbolRefAttr.get(fname)
        return [values[id(v)] for v in captured]


def emit_agent_ir(g: Graph, ctx: ir.Context | None = None) -> ir.Module:
    """Build and verify the agent-level module; a verifier failure becomes an AgentError
    naming the node and line."""
    ctx = ctx or context()
    with ctx, ir.Location.unknown():
        module = ir.Module.create()
        _Emitter(module).func(g, g.name, g.inputs, public=True)
        try:
            module.operation.verify()
        except ir.MLIRError as e:
            raise AgentError(format_diagnostics(e)) from None
    return module


def format_diagnostics(e: ir.MLIRError) -> str:
    """One line per diagnostic: `graph.py:12: node 'x': message`."""
    out = [f"{describe_loc(d.location)}: {d.message}" for d in e.error_diagnostics or []]
    return "\n".join(out) or str(e).splitlines()[0]


def _typed(loc: ir.Location) -> ir.Location:
    """The location as its own kind (NameLoc, FileLineColLoc, ...): diagnostics hand out
    plain `Location`s."""
    return ir.Location.from_attr(loc.attr, loc.context)


def describe_loc(loc: ir.Location) -> str:
    """`graph.py:12: node 'x'` for a node's location, `graph.py:12` for a file location."""
    loc = _typed(loc)
    if isinstance(loc, ir.NameLoc):
        child = loc.child_loc
        where = describe_loc(child) if isinstance(child, ir.FileLineColLoc) else "<unknown>"
        return f"{where}: node '{loc.name_str}'"
    if isinstance(loc, ir.FileLineColLoc):
        return f"{loc.filename}:{loc.start_line}"
    return str(loc)


def source_loc(loc: ir.Location) -> SourceLoc:
    """The graph.py file and line of an op's location (`<unknown>:0` if it has none)."""
    loc = _typed(loc)
    if isinstance(loc, ir.NameLoc):
        loc = loc.child_loc
    if isinstance(loc, ir.FileLineColLoc):
        return SourceLoc(loc.filename, loc.start_line)
    return SourceLoc("<unknown>", 0)


def op_name(op) -> str:
    """An operator's name: its `agent.name` attribute ("" if it has none)."""
    attrs = op.attributes
    return ir.StringAttr(attrs[NAME]).value if NAME in attrs else ""
