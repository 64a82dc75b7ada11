"""check-no-agent-ops: fail if any `agent.*` op is left in a module bound for IREE.

iree-compile 3.13 segfaults without a message on an unregistered op; this pass turns that
into an error naming the op and its graph.py location.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch_mlir import ir

from agentc.ir.emit import describe_loc
from agentc.passes.options import check_options


class AgentOpLeft(Exception):
    def __init__(self, msg: str, location=None):
        super().__init__(msg)
        self.location = location  # the op's, for diagnostics (agentc-opt --verify-diagnostics)


@dataclass(frozen=True)
class CheckNoAgentOps:
    device: str = ""
    NAME = "check-no-agent-ops"

    @classmethod
    def from_options(cls, opts: dict[str, str]) -> CheckNoAgentOps:
        check_options(opts, ('device',))
        return cls(opts.get("device", ""))

    def __call__(self, op: ir.Operation, pass_=None) -> None:
        def visit(o):
            for region in o.regions:
                for block in region.blocks:
                    for inner in block.operations:
                        if inner.operation.name.startswith("agent."):
                            where = describe_loc(inner.operation.location)
                            raise AgentOpLeft(f"'{inner.operation.name}' ({where}) would reach IREE in the "
                                              f"{self.device or 'device'} module", inner.operation.location)
                        visit(inner.operation)

        visit(op)
