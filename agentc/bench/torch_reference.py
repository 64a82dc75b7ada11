"""PyTorch timings of the bench's shapes, the yardstick for IREE's kernels.

Each kernel is rebuilt from its op and parameters (torch.matmul, F.linear, SDPA, ...),
timed per call with the device synchronised before and after, as the IREE calls are.
Matmul-class kernels are timed in fp32 and fp16 both, since fp16 on tensor cores is what a
datacenter GPU is bought for. TF32 stays off, so fp32 means fp32.
"""

from __future__ import annotations

import sys

import torch
import torch.nn.functional as F

from agentc.bench.progress import Progress
from agentc.bench.timing import repeat

DTYPES = {"f32": torch.float32, "f16": torch.float16}
MATMUL_OPS = ("gemm", "gemm_tb", "gemv", "similarity")


def _builder(op: str, p: dict, dtype: torch.dtype, device: str):
    """A zero-argument callable running the op on fresh random tensors (or None)."""
    def rand(*shape):
        return torch.randn(*shape, device=device, dtype=dtype)

    if op == "gemm":
        a, b = rand(p["m"], p["k"]), rand(p["k"], p["n"])
        return lambda: torch.matmul(a, b)
    if op == "gemm_tb":
        a, w = rand(p["m"], p["k"]), rand(p["n"], p["k"])
        return lambda: F.linear(a, w)
    if op == "gemv":
        w, x = rand(p["n"], p["k"]), rand(p["k"])
        return lambda: torch.mv(w, x)
    if op == "similarity":
        corpus, q = rand(p["n"], p["dim"]), rand(1, p["dim"])
        return lambda: q @ corpus.T
    if op == "attention":
        q = rand(1, p["heads"], p["seq"], p["head_dim"])
        return lambda: F.scaled_dot_product_attention(q, q, q)
    if op == "softmax":
        x = rand(p["rows"], p["cols"])
        return lambda: torch.softmax(x, dim=-1)
    if op == "layernorm":
        x, g, b = rand(p["rows"], p["cols"]), rand(p["cols"]), rand(p["cols"])
        return lambda: F.layer_norm(x, (p["cols"],), g, b, 1e-5)
    if op in ("add", "mul"):
        a, b = rand(p["n"]), rand(p["n"])
        return (lambda: a + b) if op == "add" else (lambda: a * b)
    if op == "sum_rows":
        x = rand(p["rows"], p["cols"])
        return lambda: x.sum(dim=1)
    if op == "topk":
        x = rand(1, p["n"])
        return lambda: torch.topk(x, p["k"], dim=-1)
    return None


def time_reference(kernels: list[dict], device: str, budget_s: float,
                   progress: bool = True) -> list[dict]:
    """Reference entries: {name, framework, device, dtype, measured_s, p10_s, p90_s, n}."""
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    gpu = torch.cuda.get_device_name() if device == "cuda" else ""
    out = []
    bar = Progress(len(kernels), f"reference torch:{device}", progress)
    for k in kernels:
        dtypes = ["f32", "f16"] if k["op"] in MATMUL_OPS or k["dtype"] == "f16" else [k["dtype"]]
        for dt in dtypes:
            if device == "cpu" and dt == "f16":
                continue  # CPU half matmuls are emulated: not a yardstick
            try:
                fn = _builder(k["op"], k["params"], DTYPES[dt], device)
            except (RuntimeError, KeyError) as e:  # out of memory, unsupported dtype
                print(f"reference: {k['name']} {dt}: skipped ({e})", file=sys.stderr)
                continue
            if fn is None:
                continue

            def call(fn=fn):
                fn()
                sync()

            sync()
            stats = repeat(call, budget_s)
            out.append({"name": k["name"], "framework": f"torch {torch.__version__}",
                        "device": device, "gpu": gpu, "dtype": dt, "measured_s": stats.median_s,
                        "p10_s": stats.p10_s, "p90_s": stats.p90_s, "n": stats.n,
                        "achieved_flops": k["flops"] / stats.median_s})
        bar.step(k["name"])
    return out
