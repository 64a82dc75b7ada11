"""Roofline cost of a compute kernel from its IR: FLOPs and bytes from the linalg ops'
shapes, time = max(FLOPs / (peak * efficiency), bytes / (bandwidth * efficiency)) plus a
per-call overhead and a per-dispatch overhead.

Bytes count the kernel's arguments and results (weights included): after fusion the
intermediates stay in cache or registers, and the interface traffic is what a device must
actually move.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from agentc.cost_models.catalog import DeviceSpec
from torch_mlir import ir

from agentc.plan import tensor_bytes

CONTRACTIONS = {"linalg.matmul", "linalg.batch_matmul", "linalg.matvec", "linalg.vecmat",
                "linalg.batch_matvec", "linalg.dot"}


@dataclass(frozen=True)
class Work:
    flops: float
    bytes: float
    dispatches: int


def _shape(t: ir.Type) -> list[int]:
    if isinstance(t, ir.RankedTensorType):
        return list(t.shape)
    return []


def _op_flops(op: ir.Operation) -> float:
    name = op.name
    shapes = [_shape(v.type) for v in list(op.operands) + list(op.results)]
    if name in CONTRACTIONS:
        lhs, out = _shape(op.operands[0].type), _shape(op.results[0].type)
        k = lhs[-1] if lhs else 1
        return 2.0 * float(np.prod(out or [1])) * k
    if name == "linalg.generic":
        domain = max((float(np.prod(s)) for s in shapes if s), default=1.0)
        body = len(list(op.regions[0].blocks[0].operations)) - 1
        return domain * max(body, 1)
    if name.startswith("linalg."):
        return max((float(np.prod(s)) for s in shapes if s), default=0.0)
    return 0.0


def kernel_work(impl: ir.Operation, wrapper: ir.Operation) -> Work:
    """FLOPs and interface bytes of one kernel (implementation func and its wrapper)."""
    flops, dispatches = 0.0, 0

    def visit(op):
        nonlocal flops, dispatches
        for region in op.regions:
            for block in region.blocks:
                for inner in block.operations:
                    o = inner.operation
                    if o.name.startswith("linalg.") and o.name != "linalg.yield":
                        f = _op_flops(o)
                        flops += f
                        dispatches += 1 if o.name not in ("linalg.fill", "linalg.transpose") else 0
                    visit(o)

    visit(impl.operation)
    ftype = ir.FunctionType(ir.TypeAttr(impl.attributes["function_type"]).value)
    nbytes = sum(tensor_bytes(str(t)) for t in list(ftype.inputs) + list(ftype.results))
    return Work(flops, float(nbytes), max(dispatches, 1))


def kernel_time(work: Work, spec: DeviceSpec) -> float:
    compute = work.flops / (spec.peak_flops * spec.compute_efficiency)
    memory = work.bytes / (spec.memory_bandwidth * spec.memory_efficiency)
    return max(compute, memory) + spec.call_overhead_s + work.dispatches * spec.dispatch_overhead_s * 0.5
