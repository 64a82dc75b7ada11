"""Can a hand-written kernel linked into an IREE dispatch stream GGUF's Q4_1 weights faster
than IREE's own float32 code on this CPU? (issue 23, item 2)

experiments/quantized-weights/ found that IREE 3.13's code generation streams no quantized
form faster than float32 here. IREE can instead call a function from an object file inside
a dispatch (a `stream.executable` whose function is declared `hal.import.static`, with the
object named in `hal.executable.objects`, linked into the embedded ELF). `q4_1_gemv.c` is
such a function: y = W x for W in Q4_1, with int8 activations and AVX-512 VNNI byte
products, as llama.cpp computes it. This script compiles it with gcc, wraps it in a
dispatch, compiles that with agentc's CPU flags, checks y against NumPy's float32 product of
the dequantized W, and times it beside the float32 product IREE generates for the same
shape (interleaved medians, agentc/bench/timing.py).

    python experiments/cpu-ukernel/gemv_ukernel.py [--rows-per-group N]
"""

from __future__ import annotations

import argparse
import functools
import os
import tempfile
from pathlib import Path

import numpy as np
import torch

from agentc.bench.timing import Device, interleaved
from agentc.build.iree_compile import compile_module
from agentc.cpu_kernels import gemv, objects
from agentc.cpu_kernels.blocks import FORMS, pack_q4_1, pack_q8_0
from agentc.devices import KINDS
from agentc.models.export import export_function

SHAPES = [(576, 576), (192, 576), (1536, 576), (576, 1536), (49152, 576)]  # (out, in): SmolLM2-135M's q/o, k/v, gate/up, down, head
PER_STEP = {(576, 576): 60, (192, 576): 60, (1536, 576): 60, (576, 1536): 30, (49152, 576): 1}  # times in a decode step


def build_object(out: Path, variant: str = "vnni") -> Path:
    """The kernel's object file (agentc.cpu_kernels.objects, now agentc's own; `out` unused).
    `variant`: vnni (int8 activations, AVX-512 VNNI), exact (float activations, scalar: for
    checks), empty (no work: for timing what is around it)."""
    return objects.object_file(variant)


def pack(q: np.ndarray) -> np.ndarray:
    """Q4_1 values (n, k / 32, 32) -> the kernel's packed bytes (agentc.cpu_kernels.blocks)."""
    return pack_q4_1(q, np.zeros(0), np.zeros(0))[0]


def executable(name: str, obj: Path, n: int, k: int, rows: int, form: str = "q4_1") -> str:
    """A `stream.executable` @name whose export @name runs the object's function over n / rows groups
    of output rows, for an (n, k) matrix in `form` (agentc.cpu_kernels.gemv's)."""
    return gemv.executable(name, obj, form, n, k, rows)


def dispatch(name: str, n: int, k: int, out: str, q: str, d: str, m: str, x: str, form: str = "q4_1") -> str:
    """`out = W x` through executable @name: the lines of a function body."""
    nq, ns = n * k // FORMS[form][1], n * k // 32
    return (f"    {out}_n = arith.constant {n} : index\n"
            f"    {out} = flow.dispatch @{name}::@{name}[{out}_n]({q}, {d}, {m}, {x}, {out}_n) : "
            f"(tensor<{nq}xi8>, tensor<{ns}xf32>, tensor<{ns}xf32>, tensor<{k}xf32>, index) -> tensor<{n}xf32>\n")


HEADER = '#x86 = #hal.executable.target<"llvm-cpu", "embedded-elf-x86_64">\n'


def dispatch_module(obj: Path, n: int, k: int, rows: int, form: str = "q4_1") -> str:
    """A module whose `gemv` dispatches the object's function for `form` over n / rows groups."""
    nq, ns = n * k // FORMS[form][1], n * k // 32
    return (HEADER + "module {\n" + executable("ukernel", obj, n, k, rows, form)
            + f"  func.func @gemv(%q: tensor<{nq}xi8>, %d: tensor<{ns}xf32>, %m: tensor<{ns}xf32>, "
            f"%x: tensor<{k}xf32>) -> tensor<{n}xf32> {{\n"
            + dispatch("ukernel", n, k, "%y", "%q", "%d", "%m", "%x", form)
            + f"    return %y : tensor<{n}xf32>\n  }}\n}}\n")


def q4_1(n: int, k: int, rng):
    """Random Q4_1 weights, packed for the kernel, and their float32 values."""
    q = rng.integers(0, 16, (n, k // 32, 32), dtype=np.uint8)
    d = (rng.random((n, k // 32)) * 0.02).astype(np.float32)
    m = (-8 * d).astype(np.float32)
    w = (q.astype(np.float32) * d[..., None] + m[..., None]).reshape(n, k)
    return pack(q), d.reshape(-1), m.reshape(-1), w


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows-per-group", type=int, default=64)
    a = ap.parse_args()
    kind = KINDS["cpu"]
    rng = np.random.default_rng(0)
    dev = Device(kind.driver, kind.staged_readback)
    load = os.getloadavg()[0]
    step = [0.0, 0.0]  # the decode step's linears, each its own dispatch: f32, kernel
    print(f"{'out x in':>12} {'form':>9} {'ms':>8} {'weight MB':>10} {'GB/s':>7} {'vs f32':>7} {'max rel err':>12}")
    with tempfile.TemporaryDirectory() as tmp:
        obj = build_object(Path(tmp))
        try:
            for n, k in SHAPES:
                qs, d, m, w = q4_1(n, k, rng)
                x = rng.standard_normal(k).astype(np.float32)
                ref = w.astype(np.float64) @ x.astype(np.float64)
                f32_text = export_function(lambda w, x: torch.nn.functional.linear(x, w), [w, x[None]],
                                           f"f32_{n}x{k}", ["w"], {"experiment": "cpu-ukernel"})
                f32 = dev.load(compile_module(f32_text, kind.target, kind.compile_flags, "cpu")[0], f"f32_{n}x{k}")
                uk = dev.load(compile_module(dispatch_module(obj, n, k, a.rows_per_group), kind.target,
                                             kind.compile_flags, "cpu")[0], "gemv")
                up_f = [dev.upload(w), dev.upload(x[None])]
                up_q = [dev.upload(v) for v in (qs, d, m, x)]
                q8 = rng.integers(-127, 128, (n, k // 32, 32), dtype=np.int8)
                d8 = (rng.random((n, k // 32)) * 0.01).astype(np.float32)
                ref8 = (q8.astype(np.float64) * d8[..., None]).reshape(n, k) @ x.astype(np.float64)
                uk8 = dev.load(compile_module(dispatch_module(obj, n, k, a.rows_per_group, "q8_0"), kind.target,
                                              kind.compile_flags, "cpu")[0], "gemv")
                up_8 = [dev.upload(v) for v in (*pack_q8_0(q8, d8), x)]
                errs = {}
                for name, fn, args, want in (("f32", f32, up_f, ref), ("q4_1 ukrn", uk, up_q, ref),
                                             ("q8_0 ukrn", uk8, up_8, ref8)):
                    y = dev.readback(fn(*args)).reshape(-1)
                    errs[name] = float(np.max(np.abs(y - want)) / np.max(np.abs(want)))
                stats = interleaved([functools.partial(f32, *up_f), functools.partial(uk, *up_q),
                                     functools.partial(uk8, *up_8)], budget_s=2.0, rounds=5)
                base = stats[0].median_s
                step = [t + PER_STEP[n, k] * st.median_s for t, st in zip(step, stats[:2])]
                for name, st, size in zip(errs, stats, (w.nbytes, qs.nbytes + d.nbytes + m.nbytes,
                                                        sum(v.nbytes for v in pack_q8_0(q8, d8)))):
                    print(f"{n:>6}x{k:<5} {name:>9} {st.median_s * 1e3:8.3f} {size / 1e6:10.2f} "
                          f"{size / st.median_s / 1e9:7.1f} {base / st.median_s:7.2f}x {errs[name]:12.2e}")
        finally:
            dev.close()
    print(f"a decode step's linears (30 layers and the head, a dispatch each): f32 {step[0] * 1e3:.2f} ms, "
          f"Q4_1 kernel {step[1] * 1e3:.2f} ms")
    print(f"load average {load:.2f} -> {os.getloadavg()[0]:.2f}; rows per group {a.rows_per_group}")


if __name__ == "__main__":
    main()
