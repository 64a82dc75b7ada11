"""A decoder layer's query, key and value projections computed as one product.

On a GPU a batch-1 decode step is hundreds of small kernels, each a few microseconds
whatever its size (docs/results/decode/README.md), and transformers' attention calls each
projection of the same input on its own: three matrix-vector products where one over the
three weights stacked reads the same bytes. A runtime whose form has `projections: fused`
(agentc.models.forms) streams a stacked copy of each layer's three weights, made with the
other copies (agentc.models.half_weights: `<prefix>q_proj.weight+k_proj.weight+v_proj.weight.bf16`
in a bfloat16 form, the same name without `.bf16` in a float32 one);
while the kernel is traced, the three weights are row slices of the stacked one, and the
first projection called on an input computes the product over the whole stack, of which
each projection takes its rows.

The stack is a weight of its own, not a concatenation in the kernel: IREE concatenates
widened weights on every call (one copy dispatch per weight), so stacking in the kernel
adds dispatches instead of removing them.

Groups are found by parameter name (`q_proj`/`k_proj`/`v_proj`: Llama, Mistral, Qwen, Gemma
and their kin); architectures that stack them already (Phi-3's `qkv_proj`, GPT-2's
`c_attn`) have nothing to fuse. The MLP's gate and up projections are not stacked: IREE
fuses their activation into the down projection only while they are two products; stacked
(by rows or interleaved) the activation becomes a dispatch of its own, one for one
(`experiments/kernel-forms/dispatch_count.py`).
"""

from __future__ import annotations

import contextlib
import contextvars

import numpy as np

GROUP = ("q_proj.weight", "k_proj.weight", "v_proj.weight")
_SLICES = contextvars.ContextVar("agentc_stacked_slices", default=None)


def members(name: str) -> list[str] | None:
    """The parameters a stacked weight's name stands for, in row order; None for any other name."""
    first, *rest = name.split("+")
    if not first.endswith(GROUP[0]) or tuple(rest) != GROUP[1:]:
        return None
    return [first[:-len(GROUP[0])] + s for s in GROUP]


def stacks(params: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """{stacked name: the group's weights stacked by rows} for each complete group in
    `params` whose weights share their input size and dtype, in `params`' order."""
    out = {}
    for name in params:
        if not name.endswith(GROUP[0]):
            continue
        prefix = name[:-len(GROUP[0])]
        group = [params.get(prefix + s) for s in GROUP]
        if any(a is None or a.ndim != 2 for a in group) or len({(a.shape[1], a.dtype) for a in group}) > 1:
            continue
        out[name + "+" + "+".join(GROUP[1:])] = np.concatenate(group)
    return out


@contextlib.contextmanager
def sliced(weights: list, slot: dict[str, int], stacked: dict):
    """Inside: each grouped weight in `weights` (by `slot`) is a row slice of its widened stack
    (`stacked`: {name: tensor}), which `Fuser` finds."""
    found = {}
    for name, full in stacked.items():
        start = 0
        for m in members(name):
            rows = weights[slot[m]].shape[0]
            weights[slot[m]] = piece = full[start:start + rows]
            found[id(piece)] = (full, start, piece)  # the piece is kept, so its id is not reused
            start += rows
    token = _SLICES.set(found)
    try:
        yield
    finally:
        _SLICES.reset(token)


class Fuser:
    """Answers `F.linear(x, w, b)` for a `w` that is a slice of a stack (`sliced`) from one
    product per (input, stack)."""

    def __init__(self):
        self.done: dict[tuple[int, int], tuple] = {}

    def linear(self, x, w, b, product):
        """`product(x, stack)` sliced to `w`'s rows, plus `b`; None for a weight of no stack."""
        hit = (_SLICES.get() or {}).get(id(w))
        if hit is None:
            return None
        full, start, _ = hit
        key = (id(x), id(full))
        if key not in self.done:  # x is kept with its product, so its id is not reused
            self.done[key] = (x, product(x, full))
        y = self.done[key][1][..., start:start + w.shape[0]]
        return y if b is None else y + b
