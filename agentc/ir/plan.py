"""Operator IR -> a flat list of operators (the input to cost, placement and the runtime).

Branch functions are inlined: their operators carry a guard (predicate value, polarity)
and only run when it holds; the `agent.if` itself becomes a `select` host operator. The
plan is plain JSON so the runtime never needs the MLIR bindings.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
from torch_mlir import ir

from agentc.ir.emit import NAME, op_name, source_loc
from agentc.passes.assign_devices import DEVICE, END, START

PLACED = (DEVICE, START, END)  # written by assign-devices


@dataclass
class PlanOp:
    name: str
    kind: str  # "call" or a host op: tokenize, detokenize, format, join, tool, ...
    inputs: list[str]
    outputs: list[str]
    out_types: list[str]
    attrs: dict = field(default_factory=dict)
    callee: str = ""
    guards: list[tuple[str, bool]] = field(default_factory=list)
    loc: str = ""
    device: str = ""
    start: float = 0.0
    end: float = 0.0
    out_bytes: list[int] = field(default_factory=list)  # per output, from its IR type

    def to_json(self) -> dict:
        d = asdict(self)
        del d["out_bytes"]
        return d


def type_bytes(t: ir.Type) -> int:
    """What a value of type `t` occupies: a static tensor's elements times their width;
    text and predicates are small host values (64 bytes)."""
    if isinstance(t, ir.RankedTensorType) and t.has_static_shape:
        elem = t.element_type
        width = elem.width if isinstance(elem, (ir.IntegerType, ir.FloatType)) else 32
        return int(np.prod(t.shape or [1])) * max(width // 8, 1)
    return 64


def _attr_value(a: ir.Attribute):
    if isinstance(a, (ir.StringAttr, ir.BoolAttr, ir.IntegerAttr, ir.FloatAttr, ir.FlatSymbolRefAttr)):
        return a.value
    if isinstance(a, ir.ArrayAttr):
        return [_attr_value(x) for x in a]
    return str(a)


class _Builder:
    def __init__(self, module: ir.Module):
        self.funcs = {}
        for op in module.body.operations:
            if op.operation.name == "func.func":
                self.funcs[ir.StringAttr(op.attributes["sym_name"]).value] = op
        self.ops: list[PlanOp] = []
        self.names: dict[str, int] = {}
        self.counter = 0

    def fresh(self) -> str:
        self.counter += 1
        return f"v{self.counter}"

    def unique(self, name: str) -> str:
        n = self.names.get(name, 0)
        self.names[name] = n + 1
        return name if n == 0 else f"{name}#{n}"

    def walk(self, func, env: dict, guards: list) -> list[str]:
        block = func.regions[0].blocks[0]
        for i, arg in enumerate(block.arguments):
            env.setdefault(arg, None)
        result = []
        for op in block.operations:
            o = op.operation
            ins = [env[v] for v in o.operands]
            if o.name == "func.return":
                return ins
            name, loc = op_name(o), str(source_loc(o.location))
            outs = [self.fresh() for _ in o.results]
            for r, vid in zip(o.results, outs):
                env[r] = vid
            out_types = [str(r.type) for r in o.results]
            out_bytes = [type_bytes(r.type) for r in o.results]
            attrs = {k: _attr_value(o.attributes[k]) for k in o.attributes if k not in (NAME, *PLACED)}
            placed = [_attr_value(o.attributes[k]) if k in o.attributes else d for k, d in zip(PLACED, ("", 0.0, 0.0))]
            if o.name == "agent.if":
                then_out = self.inline(attrs["then_branch"], ins[1:], guards + [(ins[0], True)])
                else_out = self.inline(attrs["else_branch"], ins[1:], guards + [(ins[0], False)])
                self.ops.append(PlanOp(self.unique(name), "select", [ins[0], then_out[0], else_out[0]],
                                       outs, out_types, {}, "", list(guards), loc, *placed, out_bytes=out_bytes))
                continue
            kind = "call" if o.name == "func.call" else o.name.removeprefix("agent.")
            callee = attrs.pop("callee", "") if kind == "call" else ""
            self.ops.append(PlanOp(self.unique(name or kind), kind, ins, outs, out_types, attrs,
                                   callee, list(guards), loc, *placed, out_bytes=out_bytes))
        return result

    def inline(self, symbol: str, args: list[str], guards: list) -> list[str]:
        func = self.funcs[symbol]
        block = func.regions[0].blocks[0]
        env = {arg: vid for arg, vid in zip(block.arguments, args)}
        return self.walk(func, env, guards)


def build_plan(module: ir.Module, entry: str) -> tuple[list[PlanOp], list[str], list[str]]:
    """Returns (operators in program order, input value ids, output value ids)."""
    b = _Builder(module)
    func = b.funcs[entry]
    block = func.regions[0].blocks[0]
    inputs = [f"in{i}" for i in range(len(block.arguments))]
    env = {arg: vid for arg, vid in zip(block.arguments, inputs)}
    outputs = b.walk(func, env, [])
    return b.ops, inputs, outputs
