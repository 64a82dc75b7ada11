"""Deterministic random weights for the test-tier models.

Weights are derived from the model name and parameter name, so two processes (the compiler
and a reference run) produce identical tensors without sharing files.
"""

from __future__ import annotations

import hashlib

import numpy as np


def seeded_normal(model: str, name: str, shape: tuple[int, ...], std: float) -> np.ndarray:
    seed = int.from_bytes(hashlib.sha256(f"{model}/{name}".encode()).digest()[:8], "little")
    return (np.random.default_rng(seed).standard_normal(shape) * std).astype(np.float32)


def all_group(groups: dict, name: str, layers: int) -> dict:
    """Every weight of a layered LLM in one group (step granularity), in the argument order
    of its prefill/decode: `<name>/embed`'s, then layer i's as `l<i>.<param>`."""
    out = dict(groups[f"{name}/embed"])
    for i in range(layers):
        out.update({f"l{i}.{n}": a for n, a in groups[f"{name}/l{i}"].items()})
    return out
