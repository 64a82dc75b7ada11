"""Which kernels the bench measures, per target and size of run.

The shapes are the ones agentc's agents produce: square GEMMs for the compute roof, the
skinny GEMMs of prefill (tokens x hidden x hidden), decode's 1 x K x N products and GEMVs,
attention heads, softmax and layernorm rows, elementwise and row reductions over a range
of sizes (cache-resident to DRAM-bound), single long rows, agentc's greedy sampling over
real vocabularies and its argmax-rounds top-k. Each target drops the cases its device
would take too long on (lavapipe runs shaders on the CPU) and cuda adds large and f16 cases.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

from agentc.bench import mlir_text, torch_kernels
from agentc.cost.catalog import load_catalog

# Largest work per kernel per target: keeps a full sweep within minutes.
LIMITS = {"cpu": (4e9, 3e8), "vulkan": (4e8, 7e7), "cuda": (1e15, 2e9)}  # (flops, bytes)


@dataclass(frozen=True)
class Case:
    op: str  # gemm, gemm_tb, gemv, attention, softmax, layernorm, add, mul, sum_rows, ...
    dtype: str
    params: tuple[tuple[str, int], ...]
    role: str = "kernel"  # or "overhead": measured for the per-call overheads, not fitted
    name: str = field(init=False)

    def __post_init__(self):
        dims = "x".join(str(v) for _, v in self.params)
        object.__setattr__(self, "name", f"{self.op}_{self.dtype}_{dims}" if dims else self.op)

    @property
    def p(self) -> dict[str, int]:
        return dict(self.params)

    def build(self) -> tuple[str, str]:
        """(module text, exported function name)."""
        return BUILDERS[self.op](self)

    def row_loop(self) -> int:
        """Rough `Work.row_loop` (the IR's count, agentc/cost/roofline.py): what one
        invocation loops over in a one-row sum, softmax (max, exp-sum and scale: three
        passes) or layernorm (four), or in sampling's and top-k's arg-reductions over the
        whole row."""
        p = self.p
        passes = {"sum_rows": 1, "softmax": 3, "layernorm": 4}
        if self.op in passes and p["rows"] == 1:
            return p["cols"] * passes[self.op]
        return {"sample": p.get("vocab", 0), "topk": p.get("n", 0)}.get(self.op, 0)

    def estimate(self) -> tuple[float, float]:
        """Rough (flops, bytes) to decide what fits a target's limits; the exact counts come
        from the IR (cost_models.roofline)."""
        p, width = self.p, (2 if self.dtype == "f16" else 4)
        if self.op in ("gemm", "gemm_tb", "linear"):
            m, k, n = p["m"], p["k"], p["n"]
            return 2.0 * m * k * n, width * (m * k + k * n) + 4 * m * n
        if self.op == "gemv":
            return 2.0 * p["n"] * p["k"], width * p["n"] * p["k"]
        if self.op == "vecmat_chain":
            return 2.0 * p["n"] * p["k"] * p["count"], width * p["n"] * p["k"] * p["count"]
        if self.op == "similarity":
            return 2.0 * p["n"] * p["dim"], 4 * p["n"] * p["dim"]
        if self.op == "sample":
            return 4.0 * p["vocab"], 4 * p["vocab"]
        if self.op == "attention":
            h, s, d = p["heads"], p["seq"], p["head_dim"]
            return 4.0 * h * s * s * d, width * 4 * h * s * d
        size = 1
        for v in p.values():
            size *= v
        return 5.0 * size, width * 3 * size


def _named(case: Case, text: str) -> tuple[str, str]:
    return text, case.name


BUILDERS: dict[str, Callable[[Case], tuple[str, str]]] = {
    "gemm": lambda c: _named(c, mlir_text.matmul(c.name, c.p["m"], c.p["k"], c.p["n"], c.dtype)),
    "gemm_tb": lambda c: _named(c, mlir_text.matmul_transposed_b(c.name, c.p["m"], c.p["k"],
                                                                  c.p["n"], c.dtype)),
    "gemv": lambda c: _named(c, mlir_text.matvec(c.name, c.p["n"], c.p["k"], c.dtype)),
    "add": lambda c: _named(c, mlir_text.elementwise(c.name, "addf", c.p["n"], c.dtype)),
    "mul": lambda c: _named(c, mlir_text.elementwise(c.name, "mulf", c.p["n"], c.dtype)),
    "sum_rows": lambda c: _named(c, mlir_text.sum_rows(c.name, c.p["rows"], c.p["cols"], c.dtype)),
    "identity": lambda c: _named(c, mlir_text.identity(c.name)),
    "chain": lambda c: _named(c, mlir_text.matmul_chain(c.name, c.p["n"], c.p["size"])),
    "vecmat_chain": lambda c: _named(c, mlir_text.vecmat_chain(c.name, c.p["k"], c.p["n"],
                                                               c.p["count"], c.dtype)),
    "softmax": lambda c: _named(c, torch_kernels.softmax(c.name, c.p["rows"], c.p["cols"],
                                                         c.dtype)),
    "layernorm": lambda c: _named(c, torch_kernels.layernorm(c.name, c.p["rows"], c.p["cols"],
                                                             c.dtype)),
    "attention": lambda c: _named(c, torch_kernels.attention(c.name, c.p["heads"], c.p["seq"],
                                                             c.p["head_dim"], c.dtype)),
    "linear": lambda c: _named(c, torch_kernels.linear(c.name, c.p["m"], c.p["k"], c.p["n"],
                                                       c.dtype)),
    "topk": lambda c: torch_kernels.topk(c.p["n"], c.p["k"]),
    "sample": lambda c: _named(c, torch_kernels.sample(c.name, c.p["vocab"])),
    "similarity": lambda c: torch_kernels.similarity(c.p["n"], c.p["dim"]),
}


def _cases(op: str, dtype: str, keys: str, rows: list[tuple[int, ...]]) -> list[Case]:
    names = keys.split(",")
    return [Case(op, dtype, tuple(zip(names, r))) for r in rows]


# Probes: a call without a dispatch, with one, and with 1, 8 and 32 dependent dispatches.
OVERHEADS = [Case("identity", "f32", (), role="overhead"),
             Case("add", "f32", (("n", 1),), role="overhead"),
             *[Case("chain", "f32", (("n", n), ("size", 16)), role="overhead") for n in (1, 8, 32)]]

FULL = [
    *_cases("gemm", "f32", "m,k,n", [(32, 32, 32), (64, 64, 64), (128, 128, 128), (256, 256, 256),
                                      (512, 512, 512), (768, 768, 768), (1024, 1024, 1024)]),
    *_cases("gemm", "f32", "m,k,n", [(160, 64, 64), (32, 384, 384), (32, 384, 1536),
                                      (32, 1536, 384), (64, 576, 576), (64, 576, 1536),
                                      (128, 768, 768), (128, 768, 3072), (128, 3072, 768),
                                      (256, 1024, 1024)]),
    *_cases("gemm_tb", "f32", "m,k,n", [(32, 384, 384), (64, 576, 576), (128, 768, 768),
                                         (128, 768, 3072)]),
    # One row times PyTorch's weight layout: a linear layer at decode, a similarity search.
    *_cases("gemm_tb", "f32", "m,k,n", [(1, 384, 384), (1, 576, 1536), (1, 768, 768),
                                         (1, 1536, 576), (1, 768, 3072), (1, 3072, 768)]),
    *_cases("gemm", "f32", "m,k,n", [(1, 384, 384), (1, 576, 1536), (1, 768, 768),
                                      (1, 1536, 576), (1, 768, 3072), (1, 3072, 768),
                                      (1, 576, 8192), (1, 4096, 4096)]),
    # Beyond the caches a strided x @ W slows far more than a stream does.
    *_cases("gemm", "f32", "m,k,n", [(1, 2048, 4096), (1, 1536, 8192), (1, 8192, 2048)]),
    # Output columns that are not a whole number of 64-wide tiles (see `linear` below).
    *_cases("gemm", "f32", "m,k,n", [(1, 384, 1000), (1, 768, 3000)]),
    # Weight rows not a multiple of 2 KiB apart, as in GPT-2's and Qwen2's layers, in the
    # caches and beyond, and one that is, at their edge: IREE's CPU code streams W at half
    # the rate at such strides (profile.ShapeRules).
    *_cases("gemm", "f32", "m,k,n", [(1, 768, 2304), (1, 4864, 896), (1, 896, 4864),
                                      (1, 1024, 4096), (1, 1536, 8960)]),
    # Chains of distinct decode-sized weights: many dispatches per call, as in a decode step.
    *_cases("vecmat_chain", "f32", "k,n,count", [(576, 1536, 4), (576, 1536, 8), (768, 3072, 4),
                                                  (576, 1536, 16), (576, 1536, 24)]),
    *_cases("gemv", "f32", "n,k", [(384, 384), (768, 768), (1536, 576), (3072, 768),
                                    (2048, 2048), (8192, 576), (4096, 4096), (8192, 2048),
                                    (1000, 384), (3000, 768), (5000, 576)]),
    *_cases("similarity", "f32", "n,dim", [(1000, 384), (10000, 384), (100000, 64)]),
    # Linear layers as the models export them (F.linear: a transpose and a matmul) whose
    # output columns are not a multiple of 64: IREE takes a slower path for every tile
    # (experiments/cost-model/ragged_columns.py; on lavapipe 3-7x per FLOP; on the CPU 1.5-2x where its
    # column tile ends in a mostly empty vector: profile.ColumnTile). The similarity kernels
    # above, over 1,000 to 100,000 passages, are such products too.
    *_cases("linear", "f32", "m,k,n", [(1, 384, 1000), (32, 384, 1000), (1, 576, 3000),
                                        (128, 384, 1000), (1, 768, 5000), (64, 576, 1000)]),
    *_cases("attention", "f32", "heads,seq,head_dim", [(6, 32, 64), (12, 32, 32), (9, 64, 64),
                                                        (12, 128, 64), (12, 256, 64),
                                                        (4, 512, 64)]),
    *_cases("softmax", "f32", "rows,cols", [(32, 128), (128, 768), (1536, 128), (512, 1024),
                                             (64, 8192), (1, 49152), (1024, 4096),
                                             (2048, 4096)]),
    # One row: sampling over a vocabulary (serial_softmax), a decode step's norm.
    *_cases("softmax", "f32", "rows,cols", [(1, 8192), (1, 2048), (1, 16384), (1, 32000),
                                             (1, 128256)]),
    *_cases("layernorm", "f32", "rows,cols", [(32, 384), (64, 576), (128, 768), (512, 1024),
                                               (2048, 1024), (1024, 4096), (4096, 2048),
                                               (1, 768), (1, 2048), (1, 4096), (1, 8192)]),
    *_cases("add", "f32", "n", [(1024,), (16384,), (262144,), (1 << 20,), (1 << 21,),
                                 (1 << 22,), (1 << 23,), (1 << 24,)]),
    *_cases("mul", "f32", "n", [(4096,), (65536,), (1 << 19,), (1 << 20,), (3 << 20,),
                                 (1 << 22,), (1 << 23,)]),
    *_cases("sum_rows", "f32", "rows,cols", [(256, 256), (128, 768), (1024, 1024), (1, 1 << 20),
                                              (64, 65536), (2048, 4096), (4096, 4096),
                                              (8192, 4096)]),
    # One long row: nothing to spread over rows (greedy sampling's shape).
    *_cases("sum_rows", "f32", "rows,cols", [(1, 4096), (1, 32768), (1, 131072), (1, 1 << 22)]),
    *_cases("sample", "f32", "vocab", [(32000,), (49152,), (128256,)]),
    *_cases("topk", "f32", "n,k", [(1000, 5), (10000, 5), (100000, 5), (10000, 10)]),
]

QUICK = [
    *_cases("gemm", "f32", "m,k,n", [(64, 64, 64), (256, 256, 256), (512, 512, 512),
                                      (160, 64, 64), (32, 384, 1536), (128, 768, 768)]),
    *_cases("gemm", "f32", "m,k,n", [(1, 768, 768), (1, 576, 1536)]),
    *_cases("gemv", "f32", "n,k", [(3072, 768)]),
    *_cases("attention", "f32", "heads,seq,head_dim", [(6, 32, 64), (12, 128, 64)]),
    *_cases("softmax", "f32", "rows,cols", [(128, 768), (512, 1024)]),
    *_cases("layernorm", "f32", "rows,cols", [(128, 768)]),
    *_cases("add", "f32", "n", [(65536,), (1 << 20,), (1 << 22,)]),
    *_cases("sum_rows", "f32", "rows,cols", [(128, 768), (1024, 1024), (4096, 1024)]),
    *_cases("topk", "f32", "n,k", [(10000, 5)]),
]

# cuda: the roofs of a datacenter GPU, f16 with f32 accumulation, and the shapes DESIGN.md
# compares against PyTorch (4096^3 GEMM, 1x4096 GEMV, 64M-element add).
CUDA_EXTRA = [
    *_cases("gemm", "f32", "m,k,n", [(2048, 2048, 2048), (4096, 4096, 4096)]),
    *_cases("gemm", "f16", "m,k,n", [(256, 256, 256), (1024, 1024, 1024), (2048, 2048, 2048),
                                      (4096, 4096, 4096), (128, 768, 768), (128, 3072, 768),
                                      (512, 4096, 4096), (1, 4096, 4096)]),
    *_cases("gemm_tb", "f16", "m,k,n", [(128, 768, 768), (512, 4096, 4096), (1, 4096, 4096)]),
    *_cases("gemv", "f16", "n,k", [(4096, 4096), (16384, 4096)]),
    *_cases("attention", "f16", "heads,seq,head_dim", [(12, 128, 64), (32, 512, 128),
                                                        (32, 1024, 128)]),
    *_cases("add", "f32", "n", [(1 << 26,)]),
    *_cases("softmax", "f32", "rows,cols", [(4096, 32768)]),
]


def sweep(target: str, quick: bool, ops: list[str] | None = None) -> list[Case]:
    """The overhead probes, then the kernels that fit the target's limits (only the `ops`
    given, e.g. ["gemm", "add"], when given)."""
    cases = list(QUICK if quick else FULL)
    if target == "cuda" and not quick:
        cases += CUDA_EXTRA
    max_flops, max_bytes = LIMITS[target]
    # A device whose shaders stop loops early (lavapipe) computes longer rows wrong
    # (experiments/cost-model/vulkan_results_check.py): their times would describe no real kernel.
    max_loop = load_catalog().devices[target].max_loop_iterations or math.inf
    def fits(c: Case) -> bool:
        flops, nbytes = c.estimate()[:2]
        return flops <= max_flops and nbytes <= max_bytes and c.row_loop() <= max_loop

    kept = [c for c in cases if fits(c) and (not ops or c.op in ops)]
    return OVERHEADS + kept
