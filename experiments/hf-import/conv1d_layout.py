"""GPT-2's `Conv1D` keeps its weight as (in, out) and computes addmm(b, x, W); a linear
layer keeps (out, in). Does the layout matter to IREE's CPU code for one row (a decode
step)? One 768 -> 3072 product each way, compiled for this CPU, timed interleaved.

    python experiments/hf-import/conv1d_layout.py
"""

from __future__ import annotations

import numpy as np
import torch

from agentc.bench.timing import Device, interleaved
from agentc.build.iree_compile import compile_module
from agentc.devices import KINDS
from agentc.models.export import export_function


def main() -> None:
    kind = KINDS["cpu"]
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 768)).astype(np.float32)
    b = rng.standard_normal((3072,)).astype(np.float32)
    w_io = rng.standard_normal((768, 3072)).astype(np.float32)
    w_oi = np.ascontiguousarray(w_io.T)
    cases = {"addmm, W (in, out)": (lambda w, b, x: torch.addmm(b, x, w), w_io),
             "linear, W (out, in)": (lambda w, b, x: torch.nn.functional.linear(x, w, b), w_oi)}
    dev = Device(kind.driver, kind.staged_readback)
    try:
        calls = []
        for i, (fn, w) in enumerate(cases.values()):
            text = export_function(fn, [w, b, x], f"f{i}", ["w", "b"], {"experiment": "conv1d-layout", "case": i})
            invoke = dev.load(compile_module(text, kind.target, kind.compile_flags, "cpu")[0], f"f{i}")
            up = [dev.upload(a) for a in (w, b, x)]
            calls.append(lambda invoke=invoke, up=up: invoke(*up))
        for name, st in zip(cases, interleaved(calls, budget_s=2.0, rounds=5)):
            print(f"{name}: {st.median_s * 1e3:.3f} ms")
        del calls
    finally:
        dev.close()


if __name__ == "__main__":
    main()
