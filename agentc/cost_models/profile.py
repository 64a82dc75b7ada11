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
import itertools
import json
import math
import re
from dataclasses import asdict, dataclass
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

    def time(self, flops: float, nbytes: float, peak_flops: float, bandwidth: float) -> float:
        compute = flops / (peak_flops * self.compute_efficiency)
        memory = nbytes / (bandwidth * self.memory_efficiency)
        return max(compute, memory) + self.overhead_s


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
                parallel: float = 1.0, columns: int = 0) -> tuple[float, str]:
        """Seconds for one call, and the calibration key that priced it. `peak_flops` and
        `memory_bandwidth` price another device of the same runtime: the efficiencies of
        the kernels IREE produces carry over, the datasheet rates change. `grid` is the
        kernel's [iteration size, workgroups] per dispatch, where known; without it the
        waves are inferred from `parallel`, its output elements. `columns` are a GEMM's
        output columns: off the profile's tile, the class's `.ragged` calibration applies, and
        for x @ W at a row stride of the profile's alias period, `vecmat.aliased`."""
        cal, key = self.calibration(op_class, dtype, nbytes,
                                    self.rules.variant(op_class, dtype, columns))
        if self.slots:
            flops *= wave_factor(grid, self.slots) if grid else nearest_waves(cal.waves, parallel)
        extra = dispatch_cost(dispatches, self.dispatch_extra_s, self.single_dispatch_s)
        peak = peak_flops or self.peak_flops
        bandwidth = memory_bandwidth or self.memory_bandwidth
        charged = nbytes * self.memory_curve.slowdown(working_set(nbytes, dispatches))
        return cal.time(flops, charged, peak, bandwidth) + extra, key


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
    not (python bench/ragged_columns.py)."""
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


# The column tilings of IREE's backends (see `ColumnTile`; bench/ragged_columns.py and the
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
    and 9.4 MB, two runs: python bench/row_strides.py), and slower still beyond it."""
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


# --- validation ---------------------------------------------------------------------------

def _field(obj: dict, name: str, kind, where: str, path, positive: bool = False):
    if not isinstance(obj, dict):
        raise ProfileError(f"{path}: {where}: expected an object, got {type(obj).__name__}")
    if name not in obj:
        raise ProfileError(f"{path}: {where}.{name}: missing field" if where else
                           f"{path}: {name}: missing field")
    value = obj[name]
    label = f"{where}.{name}" if where else name
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ProfileError(f"{path}: {label}: expected a number, got {value!r}")
        if positive and value <= 0:
            raise ProfileError(f"{path}: {label}: must be > 0, got {value}")
        if value < 0:
            raise ProfileError(f"{path}: {label}: must be >= 0, got {value}")
        return float(value)
    if not isinstance(value, kind):
        raise ProfileError(f"{path}: {label}: expected {kind.__name__}, got {value!r}")
    return value


def validate_measurements(data, path) -> None:
    """Check what fitting needs; errors name the file and the field."""
    if not isinstance(data, dict):
        raise ProfileError(f"{path}: expected a JSON object, got {type(data).__name__}")
    _field(data, "target", str, "", path)
    spec = _field(data, "spec", dict, "", path)
    _field(spec, "peak_flops", float, "spec", path, positive=True)
    _field(spec, "memory_bandwidth", float, "spec", path, positive=True)
    kernels = _field(data, "kernels", list, "", path)
    if not kernels:
        raise ProfileError(f"{path}: kernels: empty (nothing was measured)")
    for i, k in enumerate(kernels):
        where = f"kernels[{i}]"
        for name in ("name", "op_class", "dtype"):
            _field(k, name, str, where, path)
        for name in ("flops", "bytes"):
            _field(k, name, float, where, path)
        _field(k, "measured_s", float, where, path, positive=True)
        if k.get("grid") is not None:
            _pairs(k["grid"], f"{where}.grid", path, "[[iteration size, workgroups], ...] of "
                   "integers >= 0", lambda x: isinstance(x, int) and x >= 0)
    units = (data.get("device") or {}).get("compute_units")
    if units is not None:
        _field(data["device"], "compute_units", float, "device", path, positive=True)


def _calibration(obj, where: str, path) -> Calibration:
    return Calibration(
        compute_efficiency=_field(obj, "compute_efficiency", float, where, path, positive=True),
        memory_efficiency=_field(obj, "memory_efficiency", float, where, path, positive=True),
        overhead_s=_field(obj, "overhead_s", float, where, path),
        n_fit=int(obj.get("n_fit", 0)), n_holdout=int(obj.get("n_holdout", 0)),
        mape_pct_fit=float(obj.get("mape_pct_fit", 0.0)),
        mape_pct_holdout=obj.get("mape_pct_holdout"),
        cache_bytes=None if obj.get("cache_bytes") is None else
        _field(obj, "cache_bytes", float, where, path, positive=True),
        waves=tuple((float(a), float(b)) for a, b in _pairs(
            obj.get("waves", []), f"{where}.waves", path,
            "[[parallel extent, wave factor], ...] of numbers > 0",
            lambda x: isinstance(x, (int, float)) and x > 0)))


def _pairs(value, label: str, path, expected: str, ok) -> list:
    """`value` as a list of 2-element lists whose items pass `ok`; else a clear error."""
    if not isinstance(value, list) or not all(
            isinstance(p, list) and len(p) == 2 and all(not isinstance(x, bool) and ok(x) for x in p)
            for p in value):
        raise ProfileError(f"{path}: {label}: expected {expected}, got {value!r}")
    return value


def profile_from_dict(data, path) -> Profile:
    validate_measurements(data, path)
    cal = _field(data, "calibration", dict, "", path)
    classes = _field(cal, "classes", dict, "calibration", path)
    if not classes:
        raise ProfileError(f"{path}: calibration.classes: empty")
    calibrations = {key: _calibration(c, f"calibration.classes.{key}", path)
                    for key, c in classes.items()}
    holdout = cal.get("mape_pct_holdout")
    if holdout is not None:
        holdout = _field(cal, "mape_pct_holdout", float, "calibration", path)
    extra, single = (_field(cal, f, float, "calibration", path) if cal.get(f) else 0.0
                     for f in ("dispatch_extra_s", "single_dispatch_s"))
    slots = cal.get("slots")
    if slots is not None:
        slots = int(_field(cal, "slots", float, "calibration", path, positive=True))
    return Profile(Path(path), data["target"], float(data["spec"]["peak_flops"]),
                   float(data["spec"]["memory_bandwidth"]), calibrations, extra, single,
                   _memory_curve(cal, path), slots, shape_rules(cal, path), holdout,
                   _field(cal, "mape_pct_all", float, "calibration", path), data)


def shape_rules(cal: dict, path="calibration") -> ShapeRules:
    """A calibration section's shape rules (`tile_columns`, `tile_lanes`, `alias_bytes`),
    each None where unset."""
    def number(name):
        if cal.get(name) is None:
            return None
        return int(_field(cal, name, float, "calibration", path, positive=True))
    size, lanes = number("tile_columns"), number("tile_lanes")
    return ShapeRules(None if size is None else ColumnTile(size, lanes), number("alias_bytes"))


def _memory_curve(cal: dict, path) -> MemoryCurve:
    curve = cal.get("memory_curve")
    if curve is None:
        return MemoryCurve()
    where = "calibration.memory_curve"
    sizes, slow = _field(curve, "bytes", list, where, path), _field(curve, "slowdown", list, where, path)
    if len(sizes) != len(slow):
        raise ProfileError(f"{path}: {where}: 'bytes' and 'slowdown' differ in length")
    for name, values in (("bytes", sizes), ("slowdown", slow)):
        for i, v in enumerate(values):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0:
                raise ProfileError(f"{path}: {where}.{name}[{i}]: expected a number > 0, got {v!r}")
    if any(b <= a for a, b in itertools.pairwise(sizes)):
        raise ProfileError(f"{path}: {where}.bytes: must be increasing")
    return MemoryCurve(tuple(map(float, sizes)), tuple(map(float, slow)))


def read_json(path) -> dict:
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except OSError as e:
        raise ProfileError(f"{path}: cannot read profile: {e.strerror or e}") from None
    except json.JSONDecodeError as e:
        raise ProfileError(f"{path}: not valid JSON: {e}") from None


def load_profile(path) -> Profile:
    """A fitted profile, ready for `kernel_time(work, spec, profile)`."""
    return profile_from_dict(read_json(path), path)


# --- fitting ------------------------------------------------------------------------------

def holdout_mask(kernels: list[dict]) -> list[bool]:
    """True for the kernels the fit must not see: every HOLDOUT_EVERY-th of each swept op
    and dtype (of each class, for kernels that name no op)."""
    seen: dict[str, int] = {}
    mask = []
    for k in kernels:
        key = calibration_key(k.get("op") or k["op_class"], k["dtype"])
        seen[key] = seen.get(key, 0) + 1
        mask.append(seen[key] % HOLDOUT_EVERY == 0)
    return mask


def _mape(pred, meas) -> float:
    pred, meas = np.asarray(pred, float), np.asarray(meas, float)
    return float(100 * np.mean(np.abs(pred - meas) / meas)) if len(meas) else float("nan")


def _predict(theta, flops, nbytes):
    """theta = log(seconds per FLOP), log(seconds per byte), log(overhead seconds)."""
    a, b, o = np.exp(theta)
    return np.maximum(flops * a, nbytes * b) + o


def _fit_points(flops, nbytes, seconds) -> np.ndarray:
    """Minimise the mean relative error by coordinate descent in log space from a few
    starts. Deterministic, no solver dependency, and indifferent to the kinks of max()."""
    seconds = np.asarray(seconds, float)

    def loss(theta):
        return float(np.mean(np.abs(_predict(theta, flops, nbytes) / seconds - 1.0)))

    best, best_loss = None, math.inf
    floor = float(seconds.min())
    for frac in (1e-6, 0.5, 0.9):
        rest = np.maximum(seconds - frac * floor, 1e-3 * seconds)
        theta = np.log([np.median(rest / flops), np.median(rest / nbytes), frac * floor])
        current, step = loss(theta), 1.0
        while step > 1e-3:
            improved = False
            for i in range(3):
                for sign in (1.0, -1.0):
                    trial = theta.copy()
                    trial[i] += sign * step
                    value = loss(trial)
                    if value < current - 1e-12:
                        theta, current, improved = trial, value, True
            if not improved:
                step /= 2
        if current < best_loss:
            best, best_loss = theta, current
    return best


class _Fitter:
    """Fits of index sets, remembered: the search over cache sizes refits the same groups.

    The roofline is fitted to each kernel's time less its dispatches' known cost
    (`dispatch_cost`, measured by the bench's dispatch-chain probes); predictions add it back."""

    def __init__(self, kernels: list[dict], statistic: str, dispatch_extra_s: float,
                 single_dispatch_s: float, curve: MemoryCurve, waves: np.ndarray | None,
                 share, memo: dict):
        self.flops = np.array([max(float(k["flops"]), 1.0) for k in kernels])
        if waves is not None:
            self.flops = self.flops * waves
        self.bytes = np.array([max(float(k["bytes"]), 1.0) for k in kernels])
        dispatches = np.array([float(k.get("dispatches", 1)) for k in kernels])
        self.charged = self.bytes * np.array([curve.slowdown(share(b, d))
                                              for b, d in zip(self.bytes, dispatches)])
        self.seconds = np.array([float(k[statistic]) for k in kernels])
        self.extra = np.array([dispatch_cost(d, dispatch_extra_s, single_dispatch_s)
                               for d in dispatches])
        self.target = np.maximum(self.seconds - self.extra, 0.1 * self.seconds)
        # Shared by the fits of one `fit` call (same kernels, curve and statistic), which
        # differ only in their waves: most of their groups are the same kernels.
        self._memo = memo
        self._waves = None if waves is None else waves.tobytes()

    def theta(self, idx: tuple[int, ...]) -> np.ndarray:
        key = (self._waves, idx)
        if key not in self._memo:
            i = list(idx)
            self._memo[key] = _fit_points(self.flops[i], self.charged[i], self.target[i])
        return self._memo[key]

    def predict(self, theta, idx) -> np.ndarray:
        i = list(idx)
        return _predict(theta, self.flops[i], self.charged[i]) + self.extra[i]


def _split(fitter: _Fitter, idx: list[int], min_points: int = CACHE_SPLIT_MIN_POINTS,
           min_gain: float = CACHE_SPLIT_MIN_GAIN_PCT) -> tuple[float | None, list[int], list[int]]:
    """The cache size (a power of two) that best splits a class's fitted kernels into an
    in-cache and a beyond-cache group, or None when no split lowers their error by more
    than `min_gain` points. Each side needs `min_points` kernels."""
    def error(groups):
        pred = np.concatenate([fitter.predict(fitter.theta(tuple(g)), g) for g in groups])
        meas = np.concatenate([fitter.seconds[g] for g in groups])
        return _mape(pred, meas)

    best, best_error = (None, idx, []), error([idx]) - min_gain
    for cache in (2.0 ** e for e in range(16, 33)):
        low = [i for i in idx if fitter.bytes[i] <= cache]
        high = [i for i in idx if fitter.bytes[i] > cache]
        if min(len(low), len(high)) < min_points:
            continue
        e = error([low, high])
        if e < best_error:
            best, best_error = (cache, low, high), e
    return best


def _slowdown(fitter: _Fitter, pairs: list[tuple[np.ndarray, int]]) -> np.ndarray:
    """The change to (log FLOP cost, log byte cost, log overhead) that best fits kernels
    priced by their aligned tier's theta: one factor (0.1x to 100x) on both rates. Ragged
    GEMMs run the same work through slower code, so one parameter, identifiable from a
    single kernel, prices them."""
    def error(log_factor: float) -> float:
        step = np.array([log_factor, log_factor, 0.0])
        return _mape([fitter.predict(theta + step, [i])[0] for theta, i in pairs],
                     [fitter.seconds[i] for _, i in pairs])

    best = min(np.linspace(math.log(0.1), math.log(100.0), 401), key=error)
    return np.array([best, best, 0.0])


def _waves(kernels: list[dict], keys: list[str], held: list[bool], slots: int) -> np.ndarray:
    """Each kernel's wave factor; one without a recorded grid gets that of the fitted kernel
    of its class (and dtype) nearest in parallel extent among those with a grid. (A class's
    stored `waves`, which `Profile.predict` reads, are those of its calibration's fitted
    kernels, so a class split at a cache size infers within each side.)"""
    known = [wave_factor(k["grid"], slots) if k.get("grid") else None for k in kernels]
    by_class: dict[str, list[tuple[float, float]]] = {}
    for k, key, q, h in zip(kernels, keys, known, held):
        if q is not None and not h:
            by_class.setdefault(key, []).append((float(k.get("parallel", 1.0)), q))
    return np.array([q if q is not None else nearest_waves(
        by_class.get(key, ()), float(k.get("parallel", 1.0)))
        for k, key, q in zip(kernels, keys, known)])


def fit(data: dict, statistic: str = "measured_s", min_points: int = CACHE_SPLIT_MIN_POINTS,
        min_gain: float = CACHE_SPLIT_MIN_GAIN_PCT, share=working_set) -> dict:
    """The `calibration` section for a profile's measurements: `_fit` without waves and,
    where the device names its compute units and the kernels their grids, with them, each
    under every combination of no rule and the profile's IREE backend's shape rules
    (`COLUMN_TILES`, `ROW_ALIASES`); the one whose fitted kernels' error is lowest (held-out
    kernels play no part in the choice).
    `share(bytes, dispatches)` is the working set read off the memory curve (another rule
    only to compare models: bench/fit_variants.py)."""
    kernels = data["kernels"]
    units = (data.get("device") or {}).get("compute_units")
    slots = [None, int(units)] if units and any(k.get("grid") for k in kernels) else [None]
    backend = data.get("iree_target")
    tiles = [None] + list(COLUMN_TILES.get(backend, (ColumnTile(64),)))
    aliases = [None] + list(ROW_ALIASES.get(backend, ()))
    judged: dict[tuple[str, ...], ShapeRules] = {}  # rules that class the kernels alike: once
    for rules in (ShapeRules(t, a) for t in tiles for a in aliases):
        judged.setdefault(tuple(kernel_key(k, rules) for k in kernels), rules)
    held = holdout_mask(kernels)
    curve = MemoryCurve.measure([k for k, h in zip(kernels, held) if not h], statistic)
    memo: dict = {}  # one held-out set and curve for all: the fits share fitted groups
    fits = [_fit(data, statistic, min_points, min_gain, s, share, r, held, curve, memo)
            for s in slots for r in judged.values()]
    return min(fits, key=lambda f: f["mape_pct_fitted"])


def _fit(data: dict, statistic: str, min_points: int, min_gain: float,
         slots: int | None, share, rules: ShapeRules, held: list[bool], curve: MemoryCurve,
         memo: dict) -> dict:
    """The `calibration` section for a profile's measurements (see module docstring),
    fitted to each kernel's `statistic` (the median; "trimmed_mean_s" is the mean between
    p10 and p90, "p10_s" the quiet-machine view), with `held` kernels held out, bytes
    charged through `curve`, and fitted groups remembered in `memo` across the fits of one
    `fit` call.

    A class may also get a cache size: kernels whose interface bytes exceed it are priced
    by the class's own `<class>@dram` calibration (a cache-aware roofline: working sets
    that fit a CPU's L3 or a GPU's L2 stream several times faster, and a CPU GEMM slows once
    its operands leave L2). The size is chosen from the fitted kernels alone; `min_points`
    and `min_gain` set how much evidence a split needs (see `_split`)."""
    kernels = data["kernels"]
    peak, bw = float(data["spec"]["peak_flops"]), float(data["spec"]["memory_bandwidth"])
    over = data.get("overheads") or {}
    extra, single = (over.get("dispatch_extra_s") or 0.0), (over.get("single_dispatch_s") or 0.0)
    variants = [rules.variant(k["op_class"], k["dtype"], k.get("columns", 0)) for k in kernels]
    base = [calibration_key(k["op_class"], k["dtype"], v) for k, v in zip(kernels, variants)]
    waves = _waves(kernels, base, held, slots) if slots else None
    fitter = _Fitter(kernels, statistic, extra, single, curve, waves, share, memo)
    every = range(len(kernels))
    groups: dict[str, tuple[np.ndarray, list[int], float | None]] = {}
    keys = list(base)
    unfitted = []  # kernels of classes whose every kernel is held out
    # Ragged classes last: each is its aligned class's roofline slowed by one fitted factor.
    for key in sorted(dict.fromkeys(base), key=lambda key: key.endswith(RAGGED)):
        members = [i for i in every if base[i] == key]
        if all(held[i] for i in members):
            unfitted += members
            continue
        parent = key.removesuffix(RAGGED)
        if parent != key and parent in groups:
            cache = groups[parent][2]
            tier = {i: parent + DRAM if beyond_cache(fitter.bytes[i], cache) else parent
                    for i in members}
            slow = _slowdown(fitter, [(groups[tier[i]][0], i) for i in members if not held[i]])
            for suffix in ("", DRAM):
                inside = [i for i in members if tier[i] == parent + suffix]
                if suffix == "" or inside:
                    groups[key + suffix] = (groups[parent + suffix][0] + slow, inside,
                                            cache if suffix == "" else None)
                for i in inside:
                    keys[i] = key + suffix
            continue
        cache, low, high = _split(fitter, [i for i in members if not held[i]], min_points, min_gain)
        beyond = [i for i in members if beyond_cache(fitter.bytes[i], cache)]
        groups[key] = (fitter.theta(tuple(low)), [i for i in members if i not in beyond], cache)
        if beyond:
            groups[key + DRAM] = (fitter.theta(tuple(high)), beyond, None)
            for i in beyond:
                keys[i] = key + DRAM
    groups[FALLBACK] = (fitter.theta(tuple(i for i in every if not held[i])), list(every), None)
    fitted_caches = {key: cache for key, (_, _, cache) in groups.items()}
    for i in unfitted:  # priced as Profile.calibration will price them
        k = kernels[i]
        keys[i] = calibration_for(fitted_caches, k["op_class"], k["dtype"], fitter.bytes[i],
                                  variants[i])
        if keys[i] != FALLBACK:
            groups[keys[i]][1].append(i)
    predicted = np.array([fitter.predict(groups[keys[i]][0], [i])[0] for i in every])
    classes = {}
    for key, (theta, members, cache) in groups.items():
        pred = dict(zip(members, fitter.predict(theta, members))) if members else {}
        fitted = [i for i in members if not held[i]]
        test = [i for i in members if held[i]]
        a, b, o = np.exp(theta)
        classes[key] = asdict(Calibration(
            compute_efficiency=float(1.0 / (a * peak)), memory_efficiency=float(1.0 / (b * bw)),
            overhead_s=float(o), n_fit=len(fitted), n_holdout=len(test),
            mape_pct_fit=round(_mape([pred[i] for i in fitted], fitter.seconds[fitted]), 3),
            mape_pct_holdout=round(_mape([pred[i] for i in test], fitter.seconds[test]), 3)
            if test else None, cache_bytes=cache,
            waves=tuple(sorted({(float(kernels[i].get("parallel", 1.0)), float(waves[i]))
                                for i in fitted})) if waves is not None else ()))
    mask = np.array(held)
    return {
        "model": "max(flops*waves/(peak*compute_efficiency), bytes*slowdown(bytes/dispatches)/(bandwidth*"
                 "memory_efficiency)) + overhead_s + (dispatches - 1) * dispatch_extra_s"
                 " + [dispatches == 1] * single_dispatch_s, per"
                 " class; slowdown from memory_curve; <class>@dram beyond the class's cache_bytes;"
                 " waves = ceil(w/slots)*slots/w for the largest dispatch's w workgroups"
                 " (1 without slots)",
        "peak_flops": peak, "memory_bandwidth": bw, "statistic": statistic,
        "slots": slots,
        **rules.to_json(),
        "dispatch_extra_s": extra,
        "single_dispatch_s": single,
        "memory_curve": curve.to_json(),
        "holdout_rule": f"every {HOLDOUT_EVERY}rd kernel of each swept op (sweep order) is not fitted",
        "classes": classes,
        "keys": keys,
        "predicted_s": [float(p) for p in predicted],
        "holdout": held,
        "mape_pct_holdout": round(_mape(predicted[mask], fitter.seconds[mask]), 3)
        if mask.any() else None,
        "mape_pct_all": round(_mape(predicted, fitter.seconds), 3),
        "mape_pct_fitted": round(_mape(predicted[~mask], fitter.seconds[~mask]), 3),
    }
