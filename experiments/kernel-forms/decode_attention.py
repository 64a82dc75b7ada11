"""Decode attention on a device: which formulation IREE compiles into fast kernels.

One decode step of SmolLM2-135M attends 9 query heads (3 per key/value head) of one new
token over a key/value cache. Formulations, each exported with torch-mlir and compiled with
IREE, all returning the same (1, 9, 1, 64) result:
  matmul      grouped queries @ keys^T, softmax, @ values (two batch_matmul with M = 3)
  bcast_sum   broadcast products summed over the head dimension, then over positions
  per_head    keys and values repeated to 9 heads: per-head products with M = 1
  per_head_view  the same through a broadcast view (expand) instead of repeat_interleave
  transposed  keys @ grouped queries^T (M = cache length), values^T @ probabilities^T

Here:   python experiments/kernel-forms/decode_attention.py compile --target cuda --out .device/decode-attention
There:  python experiments/kernel-forms/decode_attention.py run .device/decode-attention --driver cuda --json F
`run` checks each module against a NumPy reference and times a call (dispatches and wait;
inputs stay on the device), all measured side by side in one process.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from formulations import check_and_time, compile_each
from formulations import main as cli

KV_HEADS, GROUP, HEAD_DIM = 3, 3, 64
CACHES = (256, 1024)


def formulations():
    import torch

    scale = 1.0 / math.sqrt(HEAD_DIM)

    def softmax(s, bias):
        return torch.softmax(s * scale + bias, dim=-1)

    def matmul(q, k, v, bias):
        qg = q.reshape(1, KV_HEADS, GROUP, HEAD_DIM)
        p = softmax(qg @ k.transpose(-1, -2), bias)
        return (p @ v).reshape(1, KV_HEADS * GROUP, 1, HEAD_DIM)

    def bcast_sum(q, k, v, bias):
        qg = q.reshape(1, KV_HEADS, GROUP, HEAD_DIM)
        p = softmax((qg[:, :, :, None, :] * k[:, :, None, :, :]).sum(-1), bias)
        return (p[..., None] * v[:, :, None, :, :]).sum(-2).reshape(1, KV_HEADS * GROUP, 1, HEAD_DIM)

    def per_head(q, k, v, bias):
        kr = k.repeat_interleave(GROUP, dim=1)  # (1, 9, L, 64)
        vr = v.repeat_interleave(GROUP, dim=1)
        p = softmax(q @ kr.transpose(-1, -2), bias)  # (1, 9, 1, L)
        return p @ vr

    def per_head_view(q, k, v, bias):
        shape = (1, KV_HEADS, GROUP, k.shape[2], HEAD_DIM)
        kr = k[:, :, None].expand(shape).reshape(1, KV_HEADS * GROUP, k.shape[2], HEAD_DIM)
        vr = v[:, :, None].expand(shape).reshape(1, KV_HEADS * GROUP, k.shape[2], HEAD_DIM)
        p = softmax(q @ kr.transpose(-1, -2), bias)
        return p @ vr

    def transposed(q, k, v, bias):
        qg = q.reshape(1, KV_HEADS, GROUP, HEAD_DIM)
        p = softmax((k @ qg.transpose(-1, -2)).transpose(-1, -2), bias)  # (1, 3, 3, L)
        out = v.transpose(-1, -2) @ p.transpose(-1, -2)  # (1, 3, 64, 3)
        return out.transpose(-1, -2).reshape(1, KV_HEADS * GROUP, 1, HEAD_DIM)

    return {"matmul": matmul, "bcast_sum": bcast_sum, "per_head": per_head,
            "per_head_view": per_head_view, "transposed": transposed}


def inputs(cache: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    q = rng.standard_normal((1, KV_HEADS * GROUP, 1, HEAD_DIM)).astype(np.float32)
    k = rng.standard_normal((1, KV_HEADS, cache, HEAD_DIM)).astype(np.float32)
    v = rng.standard_normal((1, KV_HEADS, cache, HEAD_DIM)).astype(np.float32)
    bias = np.where(np.arange(cache) <= cache // 2, 0.0, -1e9).astype(np.float32)[None, :]
    return [q, k, v, bias]


def reference(q, k, v, bias) -> np.ndarray:
    qg = q.reshape(KV_HEADS, GROUP, HEAD_DIM).astype(np.float64)
    s = np.einsum("hgd,hld->hgl", qg, k[0]) / math.sqrt(HEAD_DIM) + bias
    p = np.exp(s - s.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    return np.einsum("hgl,hld->hgd", p, v[0]).reshape(1, KV_HEADS * GROUP, 1, HEAD_DIM)


def compile_all(target: str, out: Path) -> None:
    items = [(f"{name}.{cache}", name, fn, inputs(cache))
             for cache in CACHES for name, fn in formulations().items()]
    compile_each(target, out, items)


def run_all(build: Path, driver: str, staged: bool, out_json: str | None) -> None:
    def case(name: str, cache: str):
        args = inputs(int(cache))
        return args, reference(*args)

    check_and_time(build, driver, staged, out_json, case, width=18)


def main(argv=None):
    cli(__doc__.splitlines()[0], compile_all, run_all, argv)


if __name__ == "__main__":
    main()
