"""assign-devices: write a placement into the operator IR.

Placement decides, for every operator, a device and a start and end time; this pass records
them on the operator itself (`agent.device`, `agent.start`, `agent.end`, in seconds), so
that what comes after placement (the plan, the device modules) is derived from the IR and
not from objects beside it. Every operator of the agent's functions must be placed.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch_mlir import ir

from agentc.emit import op_name

DEVICE, START, END = "agent.device", "agent.start", "agent.end"


class Unplaced(Exception):
    pass


@dataclass(frozen=True)
class AssignDevices:
    """Options: `placement` maps operator names to (device, start s, end s)."""

    placement: dict
    NAME = "assign-devices"

    def __call__(self, module_op: ir.Operation, pass_=None) -> None:
        with ir.Location.unknown():
            self._assign(module_op)

    def _assign(self, module_op: ir.Operation) -> None:
        f64 = ir.F64Type.get()
        for fn in module_op.regions[0].blocks[0].operations:
            if fn.operation.name != "func.func" or "agent.kernel" in fn.attributes:
                continue
            for block in fn.regions[0].blocks:
                for op in block.operations:
                    o = op.operation
                    name = op_name(o)
                    if o.name == "func.return" or (not name and o.name != "func.call"):
                        continue
                    if name not in self.placement:
                        raise Unplaced(f"operator '{name}' ({o.name}) has no placement")
                    device, start, end = self.placement[name]
                    o.attributes[DEVICE] = ir.StringAttr.get(device)
                    o.attributes[START] = ir.FloatAttr.get(f64, float(start))
                    o.attributes[END] = ir.FloatAttr.get(f64, float(end))
