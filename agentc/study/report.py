"""The study's tables (report.md) and plots (pareto.png, ratios.png) from its summary."""

from __future__ import annotations

import math
from pathlib import Path

from agentc.study.fleets import (
    HETERO,
    HETERO_NV,
    KINDS,
    SHORT,
    USES_CPU,
    USES_NEWEST,
    USES_OLDER,
    USES_OTHER,
)
from agentc.study.prices import BASES, ON_DEMAND, OWNED
from agentc.study.run import PARETO_RATE

MEASURED = {"this-machine-cpu.json": "measured here (this machine's CPU)",
            "nvidia-h200-cuda.json": "datasheet rates scaling the profile measured on an H200"}


def markdown(s: dict) -> str:
    out = [f"# TCO study: tables ({s['seconds']:.0f} s, {len(s['cases'])} cases, {s['families']} families)", ""]
    out += _headline(s) + _devices(s)
    for basis in (ON_DEMAND, OWNED):
        out += _per_agent(s, basis)
    out += _placements(s)
    return "\n".join(out) + "\n"


def _headline(s: dict) -> list[str]:
    rows = ["## Heterogeneous against the newest GPUs, per price basis", "",
            ("Cases where a fleet of each side meets the SLA; ratio = cheapest heterogeneous / cheapest newest-GPU "
            "fleet ($ per hour at the case's rate)."), "",
            ("| basis | compared | within 10% | >10% cheaper | >10% dearer | best saving | median ratio | "
             "older + newest NVIDIA: compared | within 10% | cheaper | dearer | best saving |"),
            "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for basis, h in s["headline"].items():
        a, b = h["hetero"], h["older_newest"]
        rows.append(f"| {basis} | {a['compared']} | {a['within_10pct']} | {a['cheaper']} | {a['dearer']} | "
                    f"{_pct(a['best_saving_pct'])} | {a['median_ratio']} | {b['compared']} | {b['within_10pct']} | "
                    f"{b['cheaper']} | {b['dearer']} | {_pct(b['best_saving_pct'])} |")
    return rows + [""]


def _pct(x) -> str:
    return "-" if x is None else f"{x:g}%"


def _devices(s: dict) -> list[str]:
    rows = ["## Where each device type's costs come from", "", "| type | $/h on demand | $/h owned | cost model |",
            "|---|---|---|---|"]
    profiles = next(iter(s["agents"].values()))["profiles"]
    for t, prof in profiles.items():
        od, ow = s["prices"][ON_DEMAND].get(t), s["prices"][OWNED].get(t)
        rows.append(f"| {SHORT.get(t, t)} | {_money(od)} | {_money(ow)} | {MEASURED.get(prof, prof or 'catalog defaults')} |")
    return rows + [""]


def _money(x) -> str:
    return "-" if x is None else f"{x:.3f}"


def _per_agent(s: dict, basis: str) -> list[str]:
    kinds = (USES_NEWEST, HETERO_NV, HETERO[1], USES_OLDER, USES_OTHER, USES_CPU)
    rows = [f"## Cheapest fleet of each kind, {basis} ($ per 1k requests, fleet)", ""]
    for key, a in s["agents"].items():
        rows += [f"### {key}: {a['what']}", "", "| tier (SLA) | rate | " + " | ".join(kinds) + " | hetero / newest |",
                 "|---|---|" + "---|" * len(kinds) + "---|"]
        for c in (c for c in s["cases"] if c["agent"] == key):
            cells = []
            for k in kinds:
                ch = c["by_kind"].get(k, {}).get(basis)
                cells.append(f"${ch['per_1k_requests']:.4f}: {ch['fleet']}" if ch else "-")
            rows.append(f"| {c['tier']} ({c['sla_ms']:.0f} ms) | {c['rate']:g}/s | " + " | ".join(cells) +
                        f" | {_ratio(c, basis)} |")
        rows.append("")
    return rows


def _ratio(c: dict, basis: str, kinds=HETERO) -> str:
    new = c["by_kind"].get(USES_NEWEST, {}).get(basis)
    het = [c["by_kind"][k][basis]["cost_per_hour"] for k in kinds if basis in c["by_kind"].get(k, {})]
    return f"{min(het) / new['cost_per_hour']:.3f}" if new and het else "-"


def _placements(s: dict) -> list[str]:
    rows = ["## Where the calls go (on demand, standard tier, 10 requests/s)", "",
            "| agent | fleet kind | fleet | calls -> device | utilisation | busy share |", "|---|---|---|---|---|---|"]
    for c in s["cases"]:
        if c["tier"] != "standard" or c["rate"] != 10.0:
            continue
        for k in KINDS:
            ch = c["by_kind"].get(k, {}).get(ON_DEMAND)
            if not ch:
                continue
            calls = "; ".join(f"{n}: {_where(t)}" for n, t in ch["placement"].items())
            util = ", ".join(f"{SHORT.get(t, t)} {u:.0%}" for t, u in ch["utilisation"].items())
            share = ", ".join(f"{SHORT.get(t, t)} {b:.0%}" for t, b in ch["busy_share"].items())
            rows.append(f"| {c['agent']} | {k} | {ch['fleet']} | {calls} | {util} | {share} |")
    return rows + [""]


def _where(t) -> str:
    """A call's place: a type, or an LLM call's prefill and decode types."""
    if isinstance(t, (list, tuple)):
        return f"prefill {SHORT.get(t[0], t[0])}, decode {SHORT.get(t[1], t[1])}"
    return SHORT.get(t, t)


def plots(s: dict, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    agents = list(s["agents"])
    colours = {"other vendor": "C3", "older + newest": "C2", "older only": "C1", "newest only": "C0"}  # drawn in this order
    cols = 3
    rows = math.ceil(len(agents) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols, 4.0 * rows), squeeze=False)
    category = _categories()
    for ax, key in zip(axes.flat, agents):
        cases = [c for c in s["cases"] if c["agent"] == key and c["rate"] == PARETO_RATE]
        for cat, col in colours.items():
            pts = [(ch["p95_ms"], ch["per_1k_requests"]) for c in cases for fam, per in c["by_family"].items()
                   if category.get(fam) == cat and (ch := per.get(ON_DEMAND))]
            if pts:
                ax.scatter(*zip(*pts), s=16, color=col, alpha=0.75, edgecolors="none", label=cat)
        for c in cases:
            ax.axvline(c["sla_ms"], color="grey", lw=0.6, ls=":")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(f"{key}, {PARETO_RATE:g} requests/s", fontsize=9)
        ax.set_xlabel("P95 ms (queueing model)", fontsize=8)
        ax.set_ylabel("$ per 1k requests, on demand", fontsize=8)
    for ax in list(axes.flat)[len(agents):]:
        ax.axis("off")
    axes[0][0].legend(fontsize=7)
    fig.suptitle("Each family's cheapest fleet per SLA tier, cost against P95 (dotted: the tiers' SLAs)", fontsize=10)
    fig.tight_layout()
    fig.savefig(out / "pareto.png", dpi=110)
    plt.close(fig)
    _ratio_plot(s, out, plt)


def _categories() -> dict[str, str]:
    from agentc.study.fleets import families

    return {f.name: f.category for f in families()}


def _ratio_plot(s: dict, out: Path, plt) -> None:
    import numpy as np

    labels = [b for b in s["headline"] if b in BASES]
    rows = [f"{c['agent']} {c['tier']} {c['rate']:g}/s" for c in s["cases"]]
    fig, axes = plt.subplots(1, 2, figsize=(12, 0.22 * len(rows) + 1.8), sharey=True)
    for ax, kinds, title in ((axes[0], HETERO, "any heterogeneous fleet / newest GPUs"),
                             (axes[1], (HETERO_NV,), "older + newest NVIDIA / newest GPUs")):
        grid = np.full((len(rows), len(labels)), np.nan)
        for i, c in enumerate(s["cases"]):
            for j, b in enumerate(labels):
                r = _ratio(c, b, kinds)
                grid[i, j] = float(r) if r != "-" else math.nan
        im = ax.imshow(np.log2(grid), cmap="RdBu_r", vmin=-2, vmax=2, aspect="auto")
        ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right", fontsize=7)
        ax.set_yticks(range(len(rows)), rows, fontsize=6)
        for i in range(len(rows)):
            for j in range(len(labels)):
                if not math.isnan(grid[i, j]):
                    ax.text(j, i, f"{grid[i, j]:.2f}", ha="center", va="center", fontsize=5)
        ax.set_title(f"Cheapest {title}", fontsize=9)
    fig.colorbar(im, ax=axes, label="log2(ratio): blue, the heterogeneous fleet is cheaper")
    fig.savefig(out / "ratios.png", dpi=110, bbox_inches="tight")
    plt.close(fig)
