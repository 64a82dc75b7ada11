"""Roofline plot of a profile: achieved FLOP/s against arithmetic intensity (log-log), the
device spec's compute and bandwidth roofs, the fitted roof per class, and PyTorch's points
where the profile has a reference. matplotlib is optional (the `plot` extra)."""

from __future__ import annotations

import numpy as np

from agentc.cost.profile import DRAM, kernel_key
from agentc.cost.profile_json import shape_rules


def roofline_png(profile: dict, path) -> str | None:
    """Write the plot; returns None, or a one-line note when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "plot skipped: matplotlib is not installed (pip install 'agentc[plot]')"
    kernels = profile["kernels"]
    spec = profile["spec"]
    peak, bw = spec["peak_flops"], spec["memory_bandwidth"]
    intensity = np.array([k["flops"] / max(k["bytes"], 1) for k in kernels])
    achieved = np.array([k["flops"] / k["measured_s"] for k in kernels])
    lo, hi = max(intensity[intensity > 0].min() / 2, 1e-3), intensity.max() * 2
    x = np.geomspace(lo, hi, 200)
    fig, ax = plt.subplots(figsize=(8, 5.5))
    ax.plot(x, np.minimum(peak, bw * x), "k-", lw=2, label="spec roof")
    cal = profile.get("calibration", {}).get("classes", {})
    rules = shape_rules(profile.get("calibration", {}))
    keys = [kernel_key(k, rules) for k in kernels]
    classes = list(dict.fromkeys(keys))
    colors = dict(zip(classes, plt.cm.tab10(np.linspace(0, 1, max(len(classes), 1)))))
    for key in classes:
        idx = [i for i, k in enumerate(keys) if k == key]
        ax.scatter(intensity[idx], achieved[idx], color=colors[key], label=key, s=22, zorder=3)
        for tier, style in ((key, "--"), (key + DRAM, ":")):
            if tier in cal:
                c = cal[tier]
                roof = np.minimum(peak * c["compute_efficiency"], bw * c["memory_efficiency"] * x)
                ax.plot(x, roof, style, color=colors[key], lw=0.8)
    refs = {k["name"]: i for i, k in enumerate(kernels)}
    ref_points = [(intensity[refs[r["name"]]], r["achieved_flops"]) for r in
                  profile.get("reference", []) if r["name"] in refs and r["dtype"] == "f16"]
    if ref_points:
        xs, ys = zip(*ref_points)
        ax.scatter(xs, ys, marker="x", color="k", s=18, label="PyTorch f16", zorder=4)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("arithmetic intensity (FLOP / interface byte)")
    ax.set_ylabel("achieved FLOP/s")
    device = profile.get("device", {}).get("name", "")
    ax.set_title(f"{profile['target']}: {device[:70]}\nfitted roof per class dashed, "
                 "beyond the class's cache dotted", fontsize=9)
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return None
