"""A GGUF file's quantized blocks, matched to the float32 weights the generic import reads
from it, so a build can stream the blocks llama.cpp streams instead of their float32 values.

The import's weights come from transformers' reading of the file (agentc.models.hf.gguf_dir):
each tensor dequantized and, for the rotary query and key rows, reordered. Each import
weight is matched, row by row, to the GGUF tensor whose dequantized rows equal its own
(exactly: the conversion computed them from the same blocks), and that tensor's blocks are
taken in the import's row order. Matching by values rather than by names keeps it free of
every architecture's naming and reordering rules. Q4_1 and Q8_0 are read (what the kernels
take, agentc.cpu_kernels); other types stay float32.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from agentc.cpu_kernels.blocks import QK, dequantize

_BYTES = {"Q4_1": 20, "Q8_0": 34}  # bytes per block of 32


@dataclass
class Blocks:
    form: str  # q4_1 or q8_0
    q: np.ndarray  # (rows, k / 32, 32): uint8 values 0..15 (Q4_1) or int8 (Q8_0)
    d: np.ndarray  # (rows, k / 32) scales
    m: np.ndarray | None  # (rows, k / 32) minima (Q4_1)

    def rows(self, order) -> Blocks:
        return Blocks(self.form, self.q[order], self.d[order], None if self.m is None else self.m[order])


def _half(b: np.ndarray, at: int) -> np.ndarray:
    return b[..., at:at + 2].copy().view(np.float16)[..., 0].astype(np.float32)


def read(path: Path) -> dict[str, Blocks]:
    """Every Q4_1 and Q8_0 tensor of the file, by its GGUF name."""
    import gguf

    out = {}
    for t in gguf.GGUFReader(str(path)).tensors:
        size = _BYTES.get(t.tensor_type.name)
        if size is None:
            continue
        raw = np.asarray(t.data)
        b = raw.reshape(raw.shape[0], -1, size)
        if t.tensor_type.name == "Q4_1":
            qs = b[..., 4:]
            out[t.name] = Blocks("q4_1", np.concatenate([qs & 15, qs >> 4], axis=-1), _half(b, 0), _half(b, 2))
        else:
            out[t.name] = Blocks("q8_0", b[..., 2:].copy().view(np.int8), _half(b, 0), None)
    return out


@functools.cache
def matcher(path: Path) -> Matcher:
    """The file's Matcher, once per process (reading and indexing a file takes seconds)."""
    return Matcher(read(path))


class Matcher:
    """Finds each float32 weight's blocks among a file's (`read`); each tensor's rows are
    indexed once, when a weight of its shape is first matched."""

    def __init__(self, blocks: dict[str, Blocks]):
        self.blocks = blocks
        self._rows: dict[str, dict[bytes, int]] = {}

    def find(self, w: np.ndarray) -> Blocks | None:
        """The blocks whose dequantized rows are w's, in w's row order (None: no tensor's are)."""
        w = np.ascontiguousarray(w, np.float32)
        if w.ndim != 2 or w.shape[1] % QK:
            return None
        for name, b in self.blocks.items():
            if b.q.shape[0] != w.shape[0] or b.q.shape[1] * QK != w.shape[1]:
                continue
            if name not in self._rows:
                deq = dequantize(b.form, b.q, b.d, b.m)
                self._rows[name] = {row.tobytes(): i for i, row in enumerate(deq)}
            where = self._rows[name]
            if w[0].tobytes() not in where:
                continue
            order = [where.get(row.tobytes()) for row in w]
            if all(i is not None for i in order):
                return b.rows(order)
        return None
