"""A linear layer on a device: which formulation IREE compiles into fast kernels.

MiniLM's blocks are `F.linear` over 64 tokens (64 x 384 @ 384 x 384, x 1536, and back),
SmolLM's prefill over 192 (576 -> 960 fused q/k/v, 576 -> 576, 576 -> 3072, 1536 -> 576).
On an H200 IREE ran `matmul_64x384x384_f32` on 6 workgroups (273 us; experiments/rag-pipeline/h200/ncu/).
Formulations of y = x @ W^T + b, W stored (out, in) as PyTorch does, each exported with
torch-mlir and compiled with IREE:
  linear      F.linear(x, W, b)
  transposed  (W @ x^T)^T + b: the output features become the rows (M = out)
  row_blocks  the 64 rows as 4 blocks of 16: a batch matmul against the same W^T

Here:   python experiments/kernel-forms/linear_forms.py compile --target cuda --out .device/linear-forms
There:  python experiments/kernel-forms/linear_forms.py run .device/linear-forms --driver cuda --json F
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from formulations import check_and_time, compile_each
from formulations import main as cli

SHAPES = ((64, 384, 384), (64, 384, 1536), (64, 1536, 384),  # (rows, in, out)
          (192, 576, 960), (192, 576, 576), (192, 576, 3072), (192, 1536, 576))


def formulations():
    import torch

    def linear(x, w, b):
        return torch.nn.functional.linear(x, w, b)

    def transposed(x, w, b):
        return (w @ x[0].T).T[None] + b

    def row_blocks(x, w, b):
        rows = x.shape[1]
        return (x.reshape(4, rows // 4, -1) @ w.T).reshape(1, rows, -1) + b

    return {"linear": linear, "transposed": transposed, "row_blocks": row_blocks}


def inputs(rows: int, n_in: int, n_out: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((1, rows, n_in)).astype(np.float32),
            (rng.standard_normal((n_out, n_in)) / np.sqrt(n_in)).astype(np.float32),
            rng.standard_normal(n_out).astype(np.float32)]


def compile_all(target: str, out: Path) -> None:
    items = [(f"{name}.{r}x{i}x{o}", name, fn, inputs(r, i, o))
             for r, i, o in SHAPES for name, fn in formulations().items()]
    compile_each(target, out, items)


def run_all(build: Path, driver: str, staged: bool, out_json: str | None) -> None:
    def case(name: str, shape: str):
        x, w, b = inputs(*map(int, shape.split("x")))
        return [x, w, b], x.astype(np.float64) @ w.T.astype(np.float64) + b

    check_and_time(build, driver, staged, out_json, case, width=26)


def main(argv=None):
    cli(__doc__.splitlines()[0], compile_all, run_all, argv)


if __name__ == "__main__":
    main()
