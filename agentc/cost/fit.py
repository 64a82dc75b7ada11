"""Fitting a calibration profile to measured kernels: the per-class roofline, held-out
error, cache splits, ragged and aliased variants, dispatch waves (see the model in
agentc/cost/profile.py)."""

from __future__ import annotations

import math
from dataclasses import asdict

import numpy as np

from agentc.cost.profile import (
    CACHE_SPLIT_MIN_GAIN_PCT,
    CACHE_SPLIT_MIN_POINTS,
    COLUMN_TILES,
    DRAM,
    FALLBACK,
    HOLDOUT_EVERY,
    RAGGED,
    ROW_ALIASES,
    Calibration,
    ColumnTile,
    MemoryCurve,
    ShapeRules,
    beyond_cache,
    calibration_for,
    calibration_key,
    dispatch_cost,
    kernel_key,
    nearest_waves,
    wave_factor,
    working_set,
)


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
    only to compare models: experiments/cost-model/fit_variants.py)."""
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
