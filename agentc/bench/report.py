"""Fit a measured profile and print how well the calibrated roofline predicts it.

The table lists every kernel (fitted or held out), measured vs predicted time, achieved
FLOP/s and bytes/s, and PyTorch's time where the profile has a reference; then the fitted
efficiencies per class, the MAPE on held-out kernels and on all, and last a line
`mape_pct=X.X` (held-out) for scripts.
"""

from __future__ import annotations

import numpy as np

from agentc.cost.fit import fit
from agentc.cost.profile_json import shape_rules, validate_measurements

STATISTICS = {"measured_s": "median", "trimmed_mean_s": "mean between p10 and p90",
              "p10_s": "10th percentile"}


def calibrate(profile: dict, path) -> dict:
    """The profile with its `calibration` section (re)computed from its measurements."""
    validate_measurements(profile, path)
    return dict(profile, calibration=fit(profile))


def _us(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1e6:,.1f}"


def table(profile: dict) -> list[str]:
    cal = profile["calibration"]
    statistic = cal.get("statistic", "measured_s")
    refs: dict[str, dict[str, float]] = {}
    for r in profile.get("reference", []):
        refs.setdefault(r["name"], {})[r["dtype"]] = r["measured_s"]
    has_ref = bool(refs)
    width = max(len(k["name"]) for k in profile["kernels"])
    head = (f"{'kernel':<{width}}  {'class':<13} {'set':<4} {'measured us':>12} "
            f"{'predicted us':>12} {'err %':>7} {'GFLOP/s':>9} {'GB/s':>7}")
    if has_ref:
        head += f" {'torch f32 us':>12} {'torch f16 us':>12}"
    device = profile.get("device", {}).get("name", "")
    flags = " ".join(profile.get("flags", []))
    variant = profile.get("variant", "base")
    lines = [f"target {profile['target']} ({device}), variant {variant}, flags: {flags}",
             f"measured: {STATISTICS.get(statistic, statistic)} of each kernel's calls", head]
    for k, pred, held in zip(profile["kernels"], cal["predicted_s"], cal["holdout"]):
        t = k[statistic]
        row = (f"{k['name']:<{width}}  {k['op_class']:<13} {'held' if held else 'fit':<4} "
               f"{_us(t):>12} {_us(pred):>12} {100 * (pred - t) / t:>+7.1f} "
               f"{k['flops'] / t / 1e9:>9.2f} {k['bytes'] / t / 1e9:>7.2f}")
        if has_ref:
            r = refs.get(k["name"], {})
            row += f" {_us(r.get('f32')):>12} {_us(r.get('f16')):>12}"
        lines.append(row)
    lines += ["", (f"{'class':<18} {'compute eff':>11} {'memory eff':>10} {'overhead us':>11} "
                   f"{'cache MiB':>9} {'fit':>4} {'held':>4} {'MAPE fit %':>10} {'MAPE held %':>11}")]
    for key, c in cal["classes"].items():
        held = c["mape_pct_holdout"]
        cache = "-" if c.get("cache_bytes") is None else f"{c['cache_bytes'] / 2**20:g}"
        lines.append(f"{key:<18} {c['compute_efficiency']:>11.4f} {c['memory_efficiency']:>10.4f} "
                     f"{c['overhead_s'] * 1e6:>11.1f} {cache:>9} {c['n_fit']:>4} {c['n_holdout']:>4} "
                     f"{c['mape_pct_fit']:>10.1f} {'-' if held is None else f'{held:.1f}':>11}")
    spec = profile["spec"]
    over = profile.get("overheads", {})
    n_held = sum(cal["holdout"])
    lines += [
        "",
        (f"spec: peak {spec['peak_flops'] / 1e9:,.1f} GFLOP/s, bandwidth "
         f"{spec['memory_bandwidth'] / 1e9:,.1f} GB/s; empty call {_us(over.get('call_s'))} us, "
         f"first dispatch {_us(over.get('dispatch_s'))} us, each further dispatch "
         f"{_us(over.get('dispatch_extra_s'))} us, a call of one dispatch "
         f"{_us(over.get('single_dispatch_s'))} us more"),
        _waves_line(profile),
        *_shape_lines(profile),
        *_noise(profile),
        f"MAPE held-out ({n_held} kernels): {_fmt(cal['mape_pct_holdout'])}%",
        f"MAPE all ({len(profile['kernels'])} kernels): {cal['mape_pct_all']:.1f}%",
        f"mape_pct={_fmt(cal['mape_pct_holdout'])}",
    ]
    return lines


def _waves_line(profile: dict) -> str:
    """Whether the fit charges whole waves of workgroups, and why (see cost_models/fit.py)."""
    slots = profile["calibration"].get("slots")
    units = (profile.get("device") or {}).get("compute_units")
    if slots:
        return f"waves: FLOPs charged in whole waves of {slots} workgroups (the device's compute units)"
    if not units:
        return "waves: not charged (the profile names no compute units)"
    if not any(k.get("grid") for k in profile["kernels"]):
        return "waves: not charged (no dispatch grids recorded)"
    return f"waves: not charged (over {units} compute units they raise the fitted kernels' error)"


def _shape_lines(profile: dict) -> list[str]:
    """Which GEMMs the fit prices as ragged or aliased (see profile.ShapeRules)."""
    rules = shape_rules(profile["calibration"])
    tile = rules.tile
    if tile is None:
        ragged = "ragged GEMMs: none judged (no column tiling lowers the fitted kernels' error)"
    elif tile.lanes:
        ragged = (f"ragged GEMMs: IREE CPU column tiles (largest divisor of the columns up to "
                  f"{tile.size}) whose last {tile.lanes}-lane vector is under half full")
    else:
        ragged = f"ragged GEMMs: output columns not a whole number of {tile.size}-wide tiles"
    aliased = (f"aliased x @ W: weight rows a multiple of {rules.alias_bytes} bytes apart"
               if rules.alias_bytes else "aliased x @ W: none judged")
    return [ragged, aliased]


def comparison(profile: dict, other: dict, other_name: str) -> list[str]:
    """Kernel by kernel, another profile's median against this one's: an IREE flag variant
    against the base build, or a rerun (the run-to-run spread is the noise floor that no
    model's MAPE can beat)."""
    theirs = {k["name"]: k["measured_s"] for k in other["kernels"]}
    common = [k for k in profile["kernels"] if k["name"] in theirs]
    if not common:
        return [f"compare: no kernel of {other_name} is in this profile"]
    width = max(len(k["name"]) for k in common)
    label = f"{other.get('variant', '')} {other.get('date', '')}".strip()
    lines = [f"compared with {other_name} ({label}): time ratio other/this",
             f"{'kernel':<{width}}  {'this us':>12} {'other us':>12} {'ratio':>7}"]
    ratios = []
    for k in common:
        ratio = theirs[k["name"]] / k["measured_s"]
        ratios.append(ratio)
        lines.append(f"{k['name']:<{width}}  {_us(k['measured_s']):>12} "
                     f"{_us(theirs[k['name']]):>12} {ratio:>7.3f}")
    ratios = np.array(ratios)
    geomean = float(np.exp(np.mean(np.log(ratios))))
    spread = 100 * float(np.mean(np.abs(ratios - 1)))
    lines += [(f"geometric mean ratio {geomean:.3f} over {len(ratios)} kernels; "
              f"mean |other - this| / this = {spread:.1f}%"), ""]
    return lines


def _noise(profile: dict) -> list[str]:
    """How noisy the measurements were, and the error of a fit to the fastest tenth of the
    calls (what the device does when other tenants leave it alone)."""
    kernels = profile["kernels"]
    if not all("p10_s" in k and "p90_s" in k for k in kernels):
        return []
    spread = float(np.median([k["p90_s"] / k["p10_s"] for k in kernels]))
    load = profile.get("timing", {}).get("host_load_before_after")
    quiet = fit(profile, "p10_s")
    where = f"; host load average before/after {load[0]} / {load[1]}" if load else ""
    return [f"measurement spread: median p90/p10 {spread:.2f}{where}",
            (f"MAPE if fitted to p10 times instead: held-out {_fmt(quiet['mape_pct_holdout'])}%, "
             f"all {quiet['mape_pct_all']:.1f}%")]


def _fmt(x: float | None) -> str:
    return "nan" if x is None else f"{x:.1f}"
