"""check-no-agent-ops: fail if any `agent.*` op is left in a module bound for IREE.

iree-compile 3.13 segfaults without a message on an unregistered op; this pass turns that
into an error naming the op and its graph.py location.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch_mlir import ir


class AgentOpLeft(Exception):
    pass


@dataclass(frozen=True)
class CheckNoAgentOps:
    device: str = ""
    NAME = "check-no-agent-ops"

    def __call__(self, op: ir.Operation, pass_=None) -> None:
        def visit(o):
            for region in o.regions:
                for block in region.blocks:
                    for inner in block.operations:
                        if inner.operation.name.startswith("agent."):
                            raise AgentOpLeft(f"'{inner.operation.name}' at {inner.operation.location} "
                                              f"would reach IREE in the {self.device} module")
                        visit(inner.operation)

        visit(op)
