"""What does IREE 3.13 do with quantized weights on this CPU? (issue 23, item 2)

A decode step is a row of activations times every weight matrix of the model, so its time
is bounded by how many bytes of weights it streams. GGUF keeps them quantized: Q8_0 is
blocks of 32 int8 values with one float16 scale (8.5 bits a weight), Q4_0 blocks of 32
4-bit values (two per byte, minus 8) with one scale (4.5 bits), Q4_1 the same with a
minimum added (5 bits). Each form is written here as PyTorch code that dequantizes the
block and multiplies (`F.linear` of the dequantized matrix), exported through torch-mlir
like agentc's kernels and compiled by IREE for this CPU. If IREE fuses the dequantization
into the product, the quantized forms stream 4-7x fewer bytes than float32 and run faster;
if it materializes the float32 matrix first, they run slower. `q8_0g` is Q8_0 written as a
per-block contraction (no float32 matrix in the source at all).

Shapes: SmolLM2-135M's decode projections (576 -> 1536, 1536 -> 576) and its head
(576 -> 49152, 113 MB in float32). Times are medians, interleaved (agentc/bench/timing.py),
inputs uploaded once; `GB/s` is the weight bytes of each form over its time.

    python experiments/quantized-weights/gemv.py [IREE_FLAG ...]
"""

from __future__ import annotations

import os

import numpy as np
import torch

from agentc.bench.timing import Device, interleaved
from agentc.build.iree_compile import compile_module
from agentc.devices import KINDS
from agentc.models.export import export_function

BLOCK = 32
SHAPES = [(1536, 576), (576, 1536), (49152, 576)]  # (out, in)


def f32(w, x):
    return torch.nn.functional.linear(x, w)


def q8_0(q, d, x):
    """q (N, K) int8, d (N, K/32) float16 scales."""
    n, k = q.shape
    w = (q.reshape(n, k // BLOCK, BLOCK).to(torch.float32) * d.to(torch.float32)[..., None]).reshape(n, k)
    return torch.nn.functional.linear(x, w)


def q8_0_grouped(q, d, x):
    """Q8_0 without forming the float32 matrix: per block, the dot product of the int8
    values (widened) with the activations, then times the block's scale and summed, so the
    widening is an elementwise operand of the contraction."""
    n, k = q.shape
    g = k // BLOCK
    dots = torch.einsum("ngj,gj->ng", q.reshape(n, g, BLOCK).to(torch.float32), x.reshape(g, BLOCK))
    return (dots * d.to(torch.float32)).sum(-1)[None]


def q4_0(p, d, x):
    """p (N, K/2) uint8, two 4-bit values a byte (low nibbles: the first 16 of a block,
    high: the last 16, as GGUF packs them), d (N, K/32) float16 scales; value = nibble - 8."""
    n, half = p.shape
    p = p.reshape(n, half * 2 // BLOCK, BLOCK // 2).to(torch.int32)
    nib = torch.cat([p & 15, p >> 4], dim=-1) - 8  # (N, K/32, 32)
    w = (nib.to(torch.float32) * d.to(torch.float32)[..., None]).reshape(n, half * 2)
    return torch.nn.functional.linear(x, w)


def q4_1(p, d, m, x):
    """Q4_0's packing, value = nibble * d + m (m: the block's minimum, float16)."""
    n, half = p.shape
    p = p.reshape(n, half * 2 // BLOCK, BLOCK // 2).to(torch.int32)
    nib = torch.cat([p & 15, p >> 4], dim=-1)
    w = (nib.to(torch.float32) * d.to(torch.float32)[..., None] + m.to(torch.float32)[..., None]).reshape(n, half * 2)
    return torch.nn.functional.linear(x, w)


def f16(w, x):
    """float16 weights widened to float32 in the product (half the bytes of float32)."""
    return torch.nn.functional.linear(x, w.to(torch.float32))


def i8i8(q, s, x):
    """int8 weights with a float32 scale per row, times activations quantized to int8 per
    row on the fly: an int8 x int8 -> int32 product, as llama.cpp computes Q8_0."""
    sx = x.abs().amax(dim=-1, keepdim=True).clamp(min=1e-12) / 127.0
    xq = torch.round(x / sx).clamp(-127, 127).to(torch.int8)
    acc = torch.matmul(xq.to(torch.int32), q.to(torch.int32).T)
    return acc.to(torch.float32) * sx * s[None]


def forms(n: int, k: int, rng):
    x = rng.standard_normal((1, k)).astype(np.float32)
    d = (rng.random((n, k // BLOCK)) * 0.01).astype(np.float16)
    packed = rng.integers(0, 256, (n, k // 2), dtype=np.uint8)
    return {"f32": (f32, [rng.standard_normal((n, k)).astype(np.float32), x], 1),
            "q8_0": (q8_0, [rng.integers(-127, 128, (n, k), dtype=np.int8), d, x], 2),
            "q8_0g": (q8_0_grouped, [rng.integers(-127, 128, (n, k), dtype=np.int8), d, x], 2),
            "q4_0": (q4_0, [packed, d, x], 2),
            "q4_1": (q4_1, [packed, d, d.copy(), x], 3),
            "f16": (f16, [rng.standard_normal((n, k)).astype(np.float16), x], 1),
            "i8i8": (i8i8, [rng.integers(-127, 128, (n, k), dtype=np.int8), (rng.random(n) * 0.01).astype(np.float32), x],
                     2)}


def main() -> None:
    import sys

    extra = tuple(sys.argv[1:])  # more iree-compile flags, e.g. --iree-opt-data-tiling
    kind = KINDS["cpu"]
    rng = np.random.default_rng(0)
    dev = Device(kind.driver, kind.staged_readback)
    load = os.getloadavg()[0]
    print(f"{'out x in':>12} {'form':>6} {'ms':>8} {'weight MB':>10} {'GB/s':>7} {'vs f32':>7}")
    try:
        for n, k in SHAPES:
            calls, sizes, names = [], [], []
            for name, (fn, args, n_w) in forms(n, k, rng).items():
                text = export_function(fn, args, f"{name}_{n}x{k}", [f"w{i}" for i in range(n_w)],
                                       {"experiment": "quantized-gemv"})
                vmfb = compile_module(text, kind.target, kind.compile_flags + extra, "cpu")[0]
                invoke = dev.load(vmfb, f"{name}_{n}x{k}")
                up = [dev.upload(a) for a in args]
                calls.append(lambda invoke=invoke, up=up: invoke(*up))
                sizes.append(sum(a.nbytes for a in args[:n_w]))
                names.append(name)
            stats = interleaved(calls, budget_s=2.0, rounds=5)
            base = stats[0].median_s
            for name, st, size in zip(names, stats, sizes):
                print(f"{n:>6}x{k:<5} {name:>6} {st.median_s * 1e3:8.3f} {size / 1e6:10.2f} "
                      f"{size / st.median_s / 1e9:7.1f} {base / st.median_s:7.2f}x")
            del calls
    finally:
        dev.close()
    print(f"load average {load:.2f} -> {os.getloadavg()[0]:.2f}; extra flags: {' '.join(extra) or 'none'}")


if __name__ == "__main__":
    main()
