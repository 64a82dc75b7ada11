"""Reading and validating calibration profiles and measurement files (the JSON `agentc bench`
writes): every error names the file and the field at fault. The types are in
agentc/cost/profile.py."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

from agentc.cost.profile import (
    Calibration,
    ColumnTile,
    MemoryCurve,
    Profile,
    ProfileError,
    ShapeRules,
)


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


