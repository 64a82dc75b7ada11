"""`agentc study tco`: the whole study, from the agents' graph.py files to a summary.

For each agent: one costing pass (agentc/study/profile.py), then for each case (SLA tier x
arrival rate) the search over every fleet family (agentc/study/search.py) under every price
basis, the base ones and the sensitivity sweep's (agentc/study/prices.py). The summary keeps,
per case and basis, the cheapest fleet of each kind (agentc/study/fleets.py `kind_of`) and
of each family, and the headline counts comparing heterogeneous fleets with the newest GPUs.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

from agentc.study import prices as pr
from agentc.study.fleets import HETERO, HETERO_NV, SHORT, TYPES, USES_NEWEST, families
from agentc.study.profile import AgentProfile, profile_agent
from agentc.study.search import RATES, TIERS, CaseResult, Choice, cases, per_1k, search

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
AGENTS = {  # key -> (graph, what it is)
    "rag": ("rag_agent_real.py", "real RAG: MiniLM, vector search, SmolLM2-135M"),
    "rewrite_rag": ("query_rewrite_rag.py", "query-rewrite RAG: SmolLM2 rewrites, MiniLM, search, SmolLM2 answers"),
    "panel": ("panel_agent.py", "fan-out panel: four SmolLM2 calls in parallel, a fifth merges"),
    "tools": ("tool_agent.py", "tool-heavy: SmolLM2 plans, three tools (0.82 s declared), SmolLM2 replies"),
    "rag_3b": ("study/rag_3b.py", "RAG with a 3B LLM: Llama-3.2-3B's architecture, priced without weights"),
}
WITHIN = 0.10
DETAILED = (pr.ON_DEMAND, pr.OWNED)  # bases whose fleets the summary keeps in full
PARETO_RATE = 10.0


def bases(inputs: pr.Inputs, sweep: dict) -> dict[str, tuple[str, pr.Inputs]]:
    """Basis label -> (price basis, inputs): the five bases, then the sweep's variations."""
    out = {b: (b, inputs) for b in pr.BASES}
    for m in sweep["on_demand_price_multipliers"]:
        if m != 1.0:
            out[f"on-demand, older GPUs x{m:g}"] = (pr.ON_DEMAND, replace(inputs, older_multiplier=m))
    for life in sweep["life_years"]:
        if life != inputs.life_years:
            out[f"owned, {life:g}-year life"] = (pr.OWNED, replace(inputs, life_years=float(life)))
    for m in sweep["electricity_price_multipliers"]:
        if m != 1.0:
            out[f"owned, electricity x{m:g}"] = (pr.OWNED, replace(inputs, usd_per_kwh=inputs.usd_per_kwh * m))
    for pue in sweep["pue_values"]:
        if pue != inputs.pue:
            out[f"owned, PUE {pue:g}"] = (pr.OWNED, replace(inputs, pue=float(pue)))
    for age in sweep["older_gpu_age_years"]:
        if age >= inputs.life_years:
            out[f"owned, older at book value, {age:g} years old"] = (pr.OWNED_BOOK,
                                                                      replace(inputs, older_age_years=float(age)))
            break  # every age past the life prices the same (power only)
    return out


def study(agents: list[str] | None = None, rates=RATES, tiers=TIERS, progress=None) -> dict:
    from agentc.cost.hardware import load_hardware

    t0 = time.perf_counter()
    hardware = load_hardware()
    inputs, sweep = pr.load_inputs()
    labels = bases(inputs, sweep)
    prices = {label: pr.hourly(b, i, hardware) for label, (b, i) in labels.items()}
    fams = families()
    out = {"agents": {}, "cases": [], "prices": prices, "inputs": inputs.__dict__, "families": len(fams),
           "tiers": tiers, "rates": list(rates)}
    chosen = agents or list(AGENTS)
    todo = len(chosen) * len(tiers) * len(rates)
    say = progress(todo) if progress else None
    for key in chosen:
        graph, what = AGENTS[key]
        profile = profile_agent(str(EXAMPLES / graph), list(TYPES))
        out["agents"][key] = {"graph": f"examples/{graph}", "what": what, "agent": profile.agent,
                              "profiles": profile.profiles, "calls": _calls(profile)}
        cache: dict = {}
        for case in cases(profile, rates, tiers):
            res = search(profile, case, fams, prices, cache)
            out["cases"].append(_case(key, profile, res))
            if say:
                say(f"{key} {case.tier} {case.rate:g}/s")
    out["headline"] = {label: headline(out["cases"], label) for label in prices}
    out["seconds"] = round(time.perf_counter() - t0, 1)
    return out


def _calls(profile: AgentProfile) -> dict:
    """Per call, its service (ms) on each type: the study's inputs from the cost model."""
    return {n.name: {"model": n.model, "ms": {t: round(c.service_s * 1e3, 3) for t, c in n.on.items()}}
            for n in profile.calls}


def _case(key: str, profile: AgentProfile, res: CaseResult) -> dict:
    c = res.case
    # Kept small (the summary is committed, at most 1 MB): each kind's fleet in full under
    # on-demand and owned prices, its cost under the other bases; each family's cheapest
    # under on-demand prices at PARETO_RATE (the Pareto plot's).
    by_family = {} if c.rate != PARETO_RATE else {
        f: {pr.ON_DEMAND: _choice(per[pr.ON_DEMAND], c.rate, brief=True)}
        for f, per in res.by_family.items() if pr.ON_DEMAND in per}
    return {"agent": key, "tier": c.tier, "sla_ms": round(c.sla_s * 1e3, 2), "rate": c.rate, "refined": res.refined,
            "by_kind": {k: {b: _choice(ch, c.rate, brief=b not in DETAILED) for b, ch in per.items()}
                        for k, per in res.by_kind.items()},
            "by_family": by_family}


def _choice(ch: Choice, rate: float, brief: bool = False) -> dict:
    s = ch.sized
    d = {"fleet": fleet_label(s.counts), "cost_per_hour": round(ch.cost_per_hour, 4),
         "per_1k_requests": round(per_1k(ch.cost_per_hour, rate), 5), "p95_ms": round(s.p95_s * 1e3, 2)}
    if brief:
        return d
    total = sum(s.busy.values())
    d.update(counts=s.counts, placement=dict(s.assignment), unloaded_ms=round(s.unloaded_s * 1e3, 2),
             utilisation={t: round(u, 3) for t, u in s.utilisation().items()},
             busy_share={t: round(b / total, 3) for t, b in s.busy.items()} if total else {})
    return d


def fleet_label(counts: dict[str, int]) -> str:
    return " + ".join(f"{n}x {SHORT.get(t, t)}" for t, n in sorted(counts.items(), key=lambda kv: -kv[1]))


def headline(case_rows: list[dict], basis: str) -> dict:
    """Cases where both a newest-GPU fleet and a heterogeneous one meet the SLA, split three
    ways by ratio = heterogeneous / newest: within 10% (|ratio - 1| <= 0.1), cheaper
    (ratio < 0.9), dearer (ratio > 1.1); the best saving and the median ratio. The same for
    older + newest NVIDIA alone."""
    def ratios(kinds) -> list[float]:
        out = []
        for row in case_rows:
            new = row["by_kind"].get(USES_NEWEST, {}).get(basis)
            het = [row["by_kind"][k][basis]["cost_per_hour"] for k in kinds if basis in row["by_kind"].get(k, {})]
            if new and het:
                out.append(min(het) / new["cost_per_hour"])
        return out

    def counts(r: list[float]) -> dict:
        return {"compared": len(r), "within_10pct": sum(abs(x - 1) <= WITHIN for x in r),
                "cheaper": sum(x < 1 - WITHIN for x in r), "dearer": sum(x > 1 + WITHIN for x in r),
                "best_saving_pct": round(100 * (1 - min(r)), 1) if r else None,
                "median_ratio": round(sorted(r)[len(r) // 2], 3) if r else None}

    return {"cases": len(case_rows), "hetero": counts(ratios(HETERO)), "older_newest": counts(ratios((HETERO_NV,)))}
