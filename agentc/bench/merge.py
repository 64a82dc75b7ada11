"""Several runs of one sweep as one profile: each kernel's statistics are their medians over
the runs.

A run interleaves its kernels over 8 rounds, so noise within it averages out, but a shared
machine changes between runs: two cpu runs of the same sweep here, one right after the
other, are 10.6% apart kernel by kernel (docs/bench.md). One run's held-out MAPE carries
that noise on top of the model's error, and a profile fitted to one run carries it into
placement. `agentc bench kernels --fit A.json B.json C.json` fits their merge instead.
"""

from __future__ import annotations

import copy

import numpy as np

from agentc.cost.profile import ProfileError

STATISTICS = ("measured_s", "p10_s", "p90_s", "trimmed_mean_s", "readback_s")


def merge_runs(runs: list[tuple[str, dict]]) -> dict:
    """One profile from `runs` ((path, profile) pairs of the same target, device and sweep):
    the first run's record with every kernel's, probe's and transfer's statistics replaced
    by their medians over the runs, and `runs` listing what went in."""
    (first_path, first), rest = runs[0], runs[1:]
    names = [k["name"] for k in first["kernels"]]
    for path, run in rest:
        for field in ("target", "variant"):
            if run.get(field) != first.get(field):
                raise ProfileError(f"{path}: {field}: {run.get(field)!r}, but {first_path} has "
                                   f"{first.get(field)!r} (merge runs of one sweep)")
        if (run.get("device") or {}).get("name") != (first.get("device") or {}).get("name"):
            raise ProfileError(f"{path}: device.name differs from {first_path}'s "
                               "(merge runs of one device)")
        theirs = [k["name"] for k in run["kernels"]]
        if theirs != names:
            missing = sorted(set(names) - set(theirs))[:3]
            extra = sorted(set(theirs) - set(names))[:3]
            raise ProfileError(f"{path}: kernels: not the sweep of {first_path} (missing "
                               f"{missing or 'none'}, extra {extra or 'none'}, or another order)")
    merged = copy.deepcopy(first)
    profiles = [run for _, run in runs]
    for i, k in enumerate(merged["kernels"]):
        _median_into(k, [run["kernels"][i] for run in profiles])
        k["achieved_flops"] = k["flops"] / k["measured_s"]
        k["achieved_bytes_per_s"] = k["bytes"] / k["measured_s"]
    probes = (merged.get("overheads") or {}).get("probes") or {}
    for name, probe in probes.items():
        _median_into(probe, [r["overheads"]["probes"][name] for r in profiles
                             if name in ((r.get("overheads") or {}).get("probes") or {})],
                     ("seconds", *STATISTICS))
    if probes:
        from agentc.bench.run_artifacts import overheads

        merged["overheads"] = overheads(probes)
    for i, t in enumerate(merged.get("transfers") or []):
        same = [r["transfers"][i] for r in profiles if len(r.get("transfers") or []) > i
                and (r["transfers"][i]["direction"], r["transfers"][i]["bytes"])
                == (t["direction"], t["bytes"])]
        _median_into(t, same, ("seconds", "p10_s", "p90_s"))
        t["gb_per_s"] = t["bytes"] / t["seconds"] / 1e9
    merged["runs"] = [{"file": str(path), "date": run.get("date"),
                       "host_load_before_after": (run.get("timing") or {}).get("host_load_before_after")}
                      for path, run in runs]
    merged.pop("calibration", None)
    return merged


def _median_into(entry: dict, samples: list[dict], fields=STATISTICS) -> None:
    for field in fields:
        values = [s[field] for s in samples if s.get(field) is not None]
        if field in entry and len(values) == len(samples):
            entry[field] = float(np.median(values))
