"""How the calibration fit's choices move its held-out error, over measured profiles.

The cost model fits a roofline per kernel class (agentc/cost/profile.py: `fit`) and holds
out every third kernel of each swept op. This re-analyses stored measurements under the
current classes and per-call overheads (as `agentc bench kernels --fit` does) and refits them
with other settings, side by side, so a change to the model is judged on all targets at
once:

  baseline          the committed settings
  min-points N      at least N fitted kernels on each side of a cache split (default 3)
  min-gain G        a cache split must lower the fitted error by G points (default 1)
  local-residual    baseline, then each kernel's prediction scaled by the residuals of
                    fitted kernels of its class near it in (log FLOPs, log bytes)
  call-curve        the memory curve read at the call's bytes instead of one dispatch's
                    share of them (bytes / dispatches)
  trimmed-mean      fitted to (and judged on) the mean between p10 and p90 instead of the
                    median, where the profile recorded it
  no-waves          without the wave term (as if the device named no compute units)
  no-single-dispatch  without the surcharge of a call of one dispatch

    python experiments/cost-model/fit_variants.py agentc/cost/profiles/*.json

Kernels get their dispatch grids for the profile's target (compiled here, cached). Prints
held-out / all-kernel MAPE per profile and variant.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from agentc.bench.artifacts import refresh
from agentc.cost import fit as F
from agentc.cost import profile as P
from agentc.cost import profile_json as J


def local_residual(data: dict, result: dict, sigma: float = 0.3, shrink: float = 0.5) -> tuple[float, float]:
    kernels, held = data["kernels"], np.array(result["holdout"])
    pred, meas = np.array(result["predicted_s"]), np.array([k["measured_s"] for k in kernels])
    x = np.log10([[max(k["flops"], 1), max(k["bytes"], 1)] for k in kernels])
    rules = J.shape_rules(result)
    cls = [P.kernel_key(k, rules) for k in kernels]
    residual = np.log(meas / pred)
    out = pred.copy()
    for j in range(len(kernels)):
        near = [i for i in range(len(kernels)) if not held[i] and i != j and cls[i] == cls[j]]
        if near:
            w = np.exp(-((x[near] - x[j]) ** 2).sum(1) / (2 * sigma ** 2))
            out[j] = pred[j] * np.exp((w * residual[near]).sum() / (w.sum() + shrink))
    err = np.abs(out - meas) / meas * 100
    return float(err[held].mean()), float(err.mean())


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("profiles", nargs="+")
    args = p.parse_args(argv)
    data = {Path(f).stem: json.loads(Path(f).read_text()) for f in args.profiles}
    for d in data.values():
        refresh(d)
    defaults = (P.CACHE_SPLIT_MIN_POINTS, P.CACHE_SPLIT_MIN_GAIN_PCT)
    variants = [(f"min-points {n}", (n, defaults[1])) for n in (4, 5, 6)] + \
               [(f"min-gain {g:g}", (defaults[0], g)) for g in (5.0, 10.0)]
    def row(label: str, cells) -> None:
        """One line: held-out / all MAPE per profile ((held, all) pairs or fit results)."""
        out = []
        for c in cells:
            if c is None:
                out.append(f"{'not recorded':>24s}")
                continue
            held, every = (c["mape_pct_holdout"], c["mape_pct_all"]) if isinstance(c, dict) else c
            out.append(f"{held:11.1f} / {every:5.1f} %")
        print(f"{label:18s} " + "  ".join(out))

    print(f"{'variant':18s} " + "  ".join(f"{name:>24s}" for name in data))
    baseline = [F.fit(d) for d in data.values()]
    row("baseline", baseline)
    for label, (points, gain) in variants:
        row(label, [F.fit(d, min_points=points, min_gain=gain) for d in data.values()])
    row("local-residual", [local_residual(d, r) for d, r in zip(data.values(), baseline)])
    row("call-curve", [F.fit(d, share=lambda nbytes, dispatches: nbytes) for d in data.values()])
    row("no-waves", [F.fit(dict(d, device={})) for d in data.values()])
    row("no-single-dispatch", [F.fit(dict(d, overheads=dict(d.get("overheads") or {},
                                                            single_dispatch_s=0.0)))
                               for d in data.values()])
    row("trimmed-mean", [F.fit(d, "trimmed_mean_s") if all("trimmed_mean_s" in k for k in d["kernels"])
                         else None for d in data.values()])


if __name__ == "__main__":
    main()
