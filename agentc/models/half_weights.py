"""Weights a GPU streams in bfloat16, half the bytes of float32.

A batch-1 decode step reads every weight once per token, so its time on a GPU follows the
bytes it streams. A runtime whose form has `weight_dtype: bfloat16` (agentc.models.forms)
gets its kernels exported over bfloat16 copies of the floating weights of two or more
dimensions (`<param>.bf16`; norms and biases stay float32): each copy is widened to float32
where it is read, which IREE fuses into the product that reads it, so the kernels still
compute in float32 and only the weights' rounding (8 bits of mantissa) changes results.

The copies are extra weights of the kernel, after its float32 ones, like the quantized
CPU blocks (agentc.models.split_linears): every form of the kernel takes them all, and each
device's module loads only the weights its form reads.
"""

from __future__ import annotations

import numpy as np

from agentc.models import fused_projections

SUFFIX = ".bf16"


def is_bfloat16(dtype: np.dtype) -> bool:
    """Without importing ml_dtypes (its extension takes ~1 s to load; every compile would pay it)."""
    return dtype.name == "bfloat16"


def copies(params: dict[str, np.ndarray], stack: bool = False, dtype: str = "bfloat16") -> dict[str, np.ndarray]:
    """bfloat16 copies (round to nearest even) of the float32 weights of two or more
    dimensions, in `params`' order; with `stack`, one copy of each layer's query, key and
    value weights stacked (agentc.models.fused_projections) in place of theirs, after the others.
    With `dtype` float32, only the stacks, in float32 and named without the suffix."""
    wanted = {n: a for n, a in params.items() if a.dtype == np.float32 and a.ndim >= 2}
    if dtype == "float32":
        return fused_projections.stacks(wanted) if stack else {}
    if not wanted:
        return {}
    import ml_dtypes

    if stack:
        stacked = fused_projections.stacks(wanted)
        grouped = {m for name in stacked for m in fused_projections.members(name)}
        wanted = {n: a for n, a in wanted.items() if n not in grouped} | stacked
    return {f"{n}{SUFFIX}": np.asarray(a).astype(ml_dtypes.bfloat16) for n, a in wanted.items()}


def stacked(name: str) -> bool:
    """Whether `name` is a copy stacking several weights (fused_projections)."""
    return fused_projections.members(name.removesuffix(SUFFIX)) is not None


def tensor_types(arrays) -> list[str]:
    """The MLIR types of the copies, as a kernel's extra arguments."""
    return [f"tensor<{'x'.join(map(str, a.shape))}x{'bf16' if is_bfloat16(a.dtype) else 'f32'}>" for a in arrays]


def reading_copies(fn, names: list[str], copy_names: list[str]):
    """`fn(*weights, *acts)` as a function of (weights..., copies..., acts...) that reads each
    copied weight from its bfloat16 copy, widened, and leaves the float32 one unread; a
    stacked copy's weights (bfloat16 or float32) are row slices of it (fused_projections.sliced)."""
    slot = {n: i for i, n in enumerate(names)}
    n, m = len(names), len(copy_names)

    def with_copies(*args):
        weights, stacks = list(args[:n]), {}
        for j, c in enumerate(copy_names):
            base = c.removesuffix(SUFFIX)
            if fused_projections.members(base):
                stacks[base] = args[n + j].float()
            else:
                weights[slot[base]] = args[n + j].float()
        with fused_projections.sliced(weights, slot, stacks):
            return fn(*weights, *args[n + m:])

    return with_copies


def storable(a: np.ndarray) -> np.ndarray:
    """The array as an IREE parameter archive can take it: bfloat16 as its bits (uint16);
    the modules that read it declare the element type."""
    return a.view(np.uint16) if is_bfloat16(a.dtype) else a
