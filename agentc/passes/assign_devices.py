"""assign-devices: write a placement into the operator IR.

Placement decides, for every operator, a device and a start and end time; this pass records
them on the operator itself (`agent.device`, `agent.start`, `agent.end`, in seconds), so
that what comes after placement (the plan, the device modules) is derived from the IR and
not from objects beside it. Every operator of the agent's functions must be placed.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field

from torch_mlir import ir

from agentc.ir import IMPL
from agentc.ir.emit import op_name
from agentc.passes.options import check_options

DEVICE, START, END = "agent.device", "agent.start", "agent.end"


class Unplaced(Exception):
    def __init__(self, msg: str, location=None):
        super().__init__(msg)
        self.location = location  # the op's, for diagnostics


@dataclass(frozen=True)
class AssignDevices:
    """Options: `placement` maps operator names to (device, start s, end s); an operator it
    does not name takes the device of the first of `rules` ((glob pattern, device) pairs)
    that matches its name, at time 0 (`assign-devices{devices=embed_query/*:vulkan,*:cpu}`);
    host operators default to "host"."""

    placement: dict = field(default_factory=dict)
    rules: tuple = ()
    NAME = "assign-devices"

    @classmethod
    def from_options(cls, opts: dict[str, str]) -> AssignDevices:
        check_options(opts, ('devices',))
        rules = []
        for rule in filter(None, opts.get("devices", "").split(",")):
            pattern, colon, device = rule.rpartition(":")
            if not colon or not pattern or not device:
                raise ValueError(f"devices: expected PATTERN:DEVICE, got '{rule}'")
            rules.append((pattern, device))
        return cls(rules=tuple(rules))

    def where(self, name: str, is_call: bool) -> tuple[str, float, float]:
        if name in self.placement:
            return self.placement[name]
        for pattern, device in self.rules:
            if fnmatch.fnmatchcase(name, pattern) and (is_call or device == "host"):
                return device, 0.0, 0.0
        if not is_call and not self.placement:
            return "host", 0.0, 0.0
        raise Unplaced(f"operator '{name}' has no placement")

    def __call__(self, module_op: ir.Operation, pass_=None) -> None:
        with ir.Location.unknown():
            self._assign(module_op)

    def _assign(self, module_op: ir.Operation) -> None:
        f64 = ir.F64Type.get()
        for fn in module_op.regions[0].blocks[0].operations:
            if fn.operation.name != "func.func" or "agent.kernel" in fn.attributes or IMPL in fn.attributes:
                continue
            for block in fn.regions[0].blocks:
                for op in block.operations:
                    o = op.operation
                    name = op_name(o)
                    if o.name == "func.return" or (not name and o.name != "func.call"):
                        continue
                    try:
                        device, start, end = self.where(name, o.name == "func.call")
                    except Unplaced as e:
                        raise Unplaced(e.args[0], o.location) from None
                    o.attributes[DEVICE] = ir.StringAttr.get(device)
                    o.attributes[START] = ir.FloatAttr.get(f64, float(start))
                    o.attributes[END] = ir.FloatAttr.get(f64, float(end))
