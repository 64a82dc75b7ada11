"""Calibration profiles: measured kernel times on one device (written by `agentc bench`),
the per-op-class roofline fitted to them, and loading them for the cost model.

The model per class c is the roofline the defaults use, with measured rates:

    time = max(flops / (peak * compute_eff_c), bytes / (bandwidth * memory_eff_c)) + overhead_c
           + (dispatches - 1) * dispatch_extra + [dispatches == 1] * single_dispatch

`dispatch_extra` and `single_dispatch` are measured, not fitted: the bench times chains of
1, 8 and 32 dependent matmuls; the slope from 8 to 32 is what each further dispatch costs
(it matters for agentc's own kernels, a whole encoder is ~35 dispatches, more than for the
sweep's 1 to 4), and what the chain of 1 costs beyond that line extended back to one
dispatch is what a call of a single dispatch pays on top (large on the H200, where such a
call's result allocation is freed synchronously; the values are in docs/bench.md).
Dispatches are the IR's estimate, as placement knows them.

`peak` and `bandwidth` are the device spec's, recorded in the profile when it was measured,
so an efficiency is a share of the datasheet rate (it can exceed 1 where the spec is
conservative, e.g. f16 tensor cores against an fp32 peak).

`bytes` in the memory term is weighted by the device's memory hierarchy: the streaming
kernels of the sweep (elementwise, one pass over their operands) give the bandwidth
reached at each working-set size, and a kernel whose working set is n times slower to
stream than the smallest measured one is charged n times its bytes (a cache-aware
roofline: a CPU's L2 and L3, then DRAM). The working set is one dispatch's share of the
bytes: dispatches run one after another, each over its own operands (on this machine's
CPU, `vecmat_chain_f32_768x3072x4`, four 9 MiB weights per call, streams 14.7 GB/s where
`gemm_f32_1x4096x4096`, one 64 MiB weight, streams 6.7). Only kernels that take at least
twice the call overhead count, so where calls cost more than streaming (the H200's ~100 us floor) the
curve has too few points and stays flat. Each class keeps its own efficiency
against that curve, and may still split at a cache size of its own (`<class>@dram`).

A GPU runs a dispatch's workgroups in waves over its compute units, so the FLOPs term is
charged at whole waves: flops * ceil(w / slots) * slots / w for the kernel's largest
dispatch of w workgroups (the grid IREE chose, recorded by the bench; see
agentc/bench/dispatch_grid.py), with `slots` the device's compute units. The fit keeps the
waves only where they lower the fitted kernels' error (a CPU's task workers take
workgroups as they free up, and there they do not). A kernel whose grid is unknown (agentc's
own, when placed) is charged the factor of its class's fitted kernel nearest in parallel
extent: one output row is one workgroup, and similar output sizes tile alike.

Every third kernel of each swept op (gemm, softmax, add, ...; in sweep order) is held out
of the fit, so the profile states an honest error for kernels it has not seen. The held-out
set follows the sweep, not the classes, so a change of classes is judged on the same kernels.
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

HOLDOUT_EVERY = 3  # the 3rd, 6th, ... kernel of each swept op (in sweep order) is held out
FALLBACK = "all"  # the calibration fitted on every class, for classes the sweep lacks
RAGGED = ".ragged"  # suffix of a GEMM class's calibration for output columns off the tile
ALIASED = ".aliased"  # suffix of x @ W's calibration for weight rows an alias period apart
DRAM = "@dram"  # suffix of a class's calibration for working sets beyond the cache
CACHE_SPLIT_MIN_GAIN_PCT = 1.0  # a class splits at a cache size only if it pays this much
CACHE_SPLIT_MIN_POINTS = 3  # fitted kernels needed on each side of a split


class ProfileError(ValueError):
    pass


@dataclass(frozen=True)
class Calibration:
    compute_efficiency: float
    memory_efficiency: float
    overhead_s: float
    n_fit: int = 0
    n_holdout: int = 0
    mape_pct_fit: float = 0.0
    mape_pct_holdout: float | None = None
    cache_bytes: float | None = None  # beyond it, the class's `@dram` calibration applies
    # (parallel extent, wave factor) of its fitted kernels: a kernel of unknown grid is
    # charged the factor of the one nearest in parallel extent (see `nearest_waves`)
    waves: tuple[tuple[float, float], ...] = ()

    def time(self, flops: float, nbytes: float, peak_flops: float, bandwidth: float, floor_s: float = 0.0) -> float:
        compute = flops / (peak_flops * self.compute_efficiency)
        memory = nbytes / (bandwidth * self.memory_efficiency)
        return max(compute, memory, floor_s) + self.overhead_s


@dataclass(frozen=True)
class Profile:
    path: Path
    target: str
    peak_flops: float
    memory_bandwidth: float
    calibrations: dict[str, Calibration]
    dispatch_extra_s: float  # each dispatch of a kernel beyond its first
    single_dispatch_s: float  # what a call of one dispatch pays beyond that
    memory_curve: MemoryCurve
    slots: int | None  # concurrent workgroups a wave holds; None: no wave term
    rules: ShapeRules  # which GEMM shapes take IREE's slower paths on this backend
    mape_pct_holdout: float | None
    mape_pct_all: float
    data: dict

    @functools.cached_property
    def _cache_bytes(self) -> dict[str, float | None]:
        """Each calibration's cache size, the lookup `calibration_for` takes: placement
        prices every kernel on every device through it."""
        return {k: c.cache_bytes for k, c in self.calibrations.items()}

    def calibration(self, op_class: str, dtype: str = "f32", nbytes: float = 0.0,
                    variant: str = "") -> tuple[Calibration, str]:
        """The calibration that prices a kernel (see `calibration_for`)."""
        key = calibration_for(self._cache_bytes, op_class, dtype, nbytes, variant)
        if key is None:
            raise ProfileError(f"{self.path}: calibration.classes: no '{op_class}' and no '{FALLBACK}'")
        return self.calibrations[key], key

    def predict(self, flops: float, nbytes: float, op_class: str, dtype: str = "f32",
                dispatches: int = 1, peak_flops: float | None = None,
                memory_bandwidth: float | None = None, grid=None,
                parallel: float = 1.0, columns: int = 0, floor_s: float = 0.0) -> tuple[float, str]:
        """Seconds for one call, and the calibration key that priced it. `peak_flops` and
        `memory_bandwidth` price another device of the same runtime: the efficiencies of
        the kernels IREE produces carry over, the datasheet rates change. `grid` is the
        kernel's [iteration size, workgroups] per dispatch, where known; without it the
        waves are inferred from `parallel`, its output elements. `columns` are a GEMM's
        output columns: off the profile's tile, the class's `.ragged` calibration applies, and
        for x @ W at a row stride of the profile's alias period, `vecmat.aliased`. `floor_s`
        is the least the data movement can take (agentc.cost.roofline.kernel_estimate)."""
        cal, key = self.calibration(op_class, dtype, nbytes,
                                    self.rules.variant(op_class, dtype, columns))
        if self.slots:
            flops *= wave_factor(grid, self.slots) if grid else nearest_waves(cal.waves, parallel)
        extra = dispatch_cost(dispatches, self.dispatch_extra_s, self.single_dispatch_s)
        peak = peak_flops or self.peak_flops
        bandwidth = memory_bandwidth or self.memory_bandwidth
        charged = nbytes * self.memory_curve.slowdown(working_set(nbytes, dispatches))
        return cal.time(flops, charged, peak, bandwidth, floor_s) + extra, key


@dataclass(frozen=True)
class MemoryCurve:
    """How much slower a byte streams at a working-set size than at the smallest measured
    one: log-linear between measured points, flat beyond them, never below 1."""
    bytes: tuple[float, ...] = ()
    slowdown_at: tuple[float, ...] = ()

    def slowdown(self, nbytes: float) -> float:
        if not self.bytes:
            return 1.0
        x = math.log(max(nbytes, 1.0))
        return float(np.exp(np.interp(x, np.log(self.bytes), np.log(self.slowdown_at))))

    @staticmethod
    def measure(kernels: list[dict], statistic: str) -> MemoryCurve:
        """From streaming kernels (`elementwise`, f32): the bandwidth each reached after its
        call overhead (the fastest of them stands for it), kept where the kernel took at
        least twice that overhead, and made non-increasing with size: a bigger working set
        never streams faster, so each size gets the best rate of itself and every larger one.
        Small kernels are the noisy ones (a call that wakes a sleeping worker thread costs
        tens of microseconds more on this machine), so a slow small one must not cap the
        rest: one 52 us call of `mul_f32_65536` (36 us in other runs) had flattened a cpu
        curve that is 4x at 192 MiB."""
        points = [(float(k["bytes"]), float(k[statistic])) for k in kernels
                  if k["op_class"] == "elementwise" and k["dtype"] == "f32" and k["bytes"] > 0]
        if not points:
            return MemoryCurve()
        overhead = min(t for _, t in points)
        by_size: dict[float, list[float]] = {}
        for b, t in points:
            if t > 2 * overhead:
                by_size.setdefault(b, []).append(b / (t - overhead))
        if len(by_size) < 2:
            return MemoryCurve()
        sizes = sorted(by_size)
        rates = [float(np.mean(by_size[b])) for b in sizes]
        best = np.maximum.accumulate(rates[::-1])[::-1]
        return MemoryCurve(tuple(sizes), tuple(float(best[0] / r) for r in best))

    def to_json(self) -> dict:
        return {"bytes": list(self.bytes), "slowdown": list(self.slowdown_at)}


def dispatch_cost(dispatches: float, extra_s: float, single_s: float) -> float:
    """The known per-dispatch part of a call's time. Plain arithmetic: placement prices
    every kernel on every device through it."""
    return max(dispatches - 1, 0) * extra_s + (dispatches <= 1) * single_s


def working_set(nbytes: float, dispatches: float) -> float:
    """The bytes one dispatch of a kernel touches, for the memory curve: its share."""
    return nbytes / max(dispatches, 1.0)


def wave_factor(grid, slots: int | None) -> float:
    """ceil(w / slots) * slots / w for the largest dispatch (by iteration space) of `grid`
    ([iteration size, workgroups] per dispatch); 1.0 without slots, grid or a known count."""
    if not slots or not grid:
        return 1.0
    _, workgroups = max(grid, key=lambda d: d[0])
    if workgroups <= 0:
        return 1.0
    return math.ceil(workgroups / slots) * slots / workgroups


def nearest_waves(pairs, parallel: float) -> float:
    """The wave factor of the (parallel extent, factor) pair nearest `parallel` on a log
    scale: similar output sizes tile into similar workgroup counts. 1.0 without pairs."""
    if not pairs:
        return 1.0
    x = math.log(max(parallel, 1.0))
    return min(pairs, key=lambda pw: abs(math.log(max(pw[0], 1.0)) - x))[1]


def calibration_key(op_class: str, dtype: str, variant: str = "") -> str:
    """`matmul`, `matmul.f16`, `matmul.ragged` (output columns not a whole number of
    tiles: IREE generates slower code for every tile), `matmul.f16.ragged`,
    `vecmat.aliased` (see `ShapeRules`)."""
    key = op_class if dtype == "f32" else f"{op_class}.{dtype}"
    return f"{key}{variant}"


@dataclass(frozen=True)
class ColumnTile:
    """How IREE tiles a GEMM's output columns, and so which column counts take slower code.

    Without `lanes`: tiles `size` wide (IREE's SPIR-V matmuls; on lavapipe a count off 64 is
    not vectorized at all, `BaseDistribute`, 3-7x slower per FLOP). More than one tile,
    and not a whole number of them, is ragged.

    With `lanes`: IREE's CPU codegen. It distributes the columns in tiles of the largest
    divisor of the count not above `size` (1,000 -> 50, 3,000 -> 60, 1,008 -> 63; checked
    against iree-compile's configurations by tests/test_roofline.py) and vectorizes each
    tile `lanes` wide. A tile whose last vector is less than half full is ragged: 50
    columns over 16 lanes run 1.6-2x slower per FLOP on this machine's CPU, 60 and 63 do
    not (python experiments/cost-model/ragged_columns.py)."""
    size: int
    lanes: int | None = None

    def span(self, columns: int) -> int:
        """The output columns of one workgroup's tile."""
        if self.lanes is None:
            return self.size
        return next(d for d in range(self.size, 0, -1) if columns % d == 0)

    def ragged(self, columns: float) -> bool:
        columns = int(columns)
        if columns <= self.size:
            return False
        if self.lanes is None:
            return columns % self.size != 0
        return 0 < self.span(columns) % self.lanes < self.lanes / 2

    def to_json(self) -> dict:
        return {"tile_columns": self.size, "tile_lanes": self.lanes}


# The column tilings of IREE's backends (see `ColumnTile`; experiments/cost-model/ragged_columns.py and the
# configurations iree-compile prints). The fit tries each of the profile's backend and none,
# and keeps the first of lowest fitted error: on the CPU the vector width (16 f32 lanes with
# AVX-512, 8 with AVX2). CUDA's one-row GEMMs give each output column a workgroup of its own
# and never go ragged; its GEMMs of more rows run 1.5x slower per FLOP over 1,000 columns.
COLUMN_TILES = {"llvm-cpu": (ColumnTile(64, 16), ColumnTile(64, 8)),
                "vulkan-spirv": (ColumnTile(64),), "cuda": (ColumnTile(64),)}


# Row strides (bytes) at which IREE's CPU code for x @ W runs slower; the fit keeps one only
# where it lowers the fitted error (see `ShapeRules`).
ROW_ALIASES = {"llvm-cpu": (2048,)}
ALIASING_CLASSES = ("vecmat",)  # x @ W: each tile of columns walks W down its rows


@functools.cache
def element_bytes(dtype: str) -> int | None:
    """Bytes per element of an MLIR element type (f32 -> 4, bf16 -> 2, f8E4M3FN -> 1);
    cached: placement prices every kernel on every device through it."""
    m = re.search(r"\d+", dtype)
    return int(m.group()) // 8 if m else None


@dataclass(frozen=True)
class ShapeRules:
    """The GEMM shapes that take IREE's slower paths on a profile's backend, each rule None
    where the fit found it does not lower the error.

    `tile`: output columns off the tile are ragged (`ColumnTile`).
    `alias_bytes`: x @ W whose weight rows (columns * element bytes apart) are a multiple of
    this many bytes apart is aliased. IREE's CPU code walks each tile of columns down W's
    rows, and rows a multiple of 2 KiB apart fall on a few of the caches' sets: on this
    machine's CPU such a product streams W 1.6-1.8x slower in L3 (15 column counts at 4.7
    and 9.4 MB, two runs: python experiments/cost-model/row_strides.py), and slower still beyond it."""
    tile: ColumnTile | None = None
    alias_bytes: int | None = None

    def variant(self, op_class: str, dtype: str, columns: float) -> str:
        """The calibration suffix for a kernel: "", RAGGED or ALIASED."""
        if self.tile is not None and self.tile.ragged(columns):
            return RAGGED
        if self.alias_bytes and columns and op_class in ALIASING_CLASSES:
            size = element_bytes(dtype)
            if size and int(columns) * size % self.alias_bytes == 0:
                return ALIASED
        return ""

    def to_json(self) -> dict:
        tile = self.tile.to_json() if self.tile else {"tile_columns": None, "tile_lanes": None}
        return {**tile, "alias_bytes": self.alias_bytes}


def kernel_key(k: dict, rules: ShapeRules = ShapeRules()) -> str:
    """The calibration key of a measured kernel record, its GEMM shape judged by `rules`."""
    return calibration_key(k["op_class"], k["dtype"],
                           rules.variant(k["op_class"], k["dtype"], k.get("columns", 0)))


def beyond_cache(nbytes: float, cache: float | None) -> bool:
    """Whether a working set of `nbytes` is priced by its class's `@dram` tier."""
    return cache is not None and nbytes > cache


def calibration_for(cache_bytes: dict[str, float | None], op_class: str, dtype: str,
                    nbytes: float, variant: str = "") -> str | None:
    """The most specific calibration for a kernel, among those fitted (key -> its cache
    size): its class, dtype and shape variant, its class and dtype, its class, a one-row
    class's many-row one (`serial_softmax` -> `softmax`), then the fit over all classes;
    within one, the `@dram` tier where the working set exceeds the cache size. The fit
    scores held-out kernels with the same choice."""
    chain = (calibration_key(op_class, dtype, variant), calibration_key(op_class, dtype),
             op_class, op_class.removeprefix("serial_"), FALLBACK)
    for key in dict.fromkeys(chain):
        if key in cache_bytes:
            cache = cache_bytes[key]
            if beyond_cache(nbytes, cache) and key + DRAM in cache_bytes:
                return key + DRAM
            return key
    return None


