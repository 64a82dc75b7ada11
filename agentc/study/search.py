"""The search: for each case (agent, SLA tier, arrival rate) and fleet family, every placement
of the agent's calls on the family's types, each sized to meet the SLA
(agentc/study/sizing.py), priced under each basis; the cheapest fleet of each kind
(agentc/study/fleets.py `kind_of`: what the fleet uses, whatever family it came from) and of
each family.

Placements are per call (a fan-out's branches may go to different types) while a family has
at most `PER_CALL` of them; beyond, every call of one model goes to one place, which keeps the
search to minutes (the panel agent's five calls on eight types would be 32,768 placements
per case). In families of at most `SPLIT_TYPES` types an LLM call may also run its prefill on
one type and its decode on another, its KV caches sent between them (sizing.parts).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass

from agentc.study.check import refine
from agentc.study.fleets import Family, kind_of
from agentc.study.profile import AgentProfile
from agentc.study.sizing import Sized, size

PER_CALL = 4096  # placements per family beyond which every call of a model goes to one place
SPLIT_TYPES = 3  # families this small may also split an LLM call's prefill from its decode
TIERS = {"tight": 1.5, "standard": 3.0, "relaxed": 10.0}  # SLA = factor x the fastest unloaded latency
RATES = (1.0, 10.0, 100.0)  # requests per second


@dataclass(frozen=True)
class Case:
    agent: str
    tier: str
    sla_s: float
    rate: float


@dataclass(frozen=True)
class Choice:
    """A cheapest fleet (of a kind or a family) for a case under a basis."""

    sized: Sized
    cost_per_hour: float


def per_1k(cost_per_hour: float, rate: float) -> float:
    return cost_per_hour / (rate * 3.6)


def fastest_unloaded(profile: AgentProfile) -> float:
    from agentc.study.sizing import latency

    where = {n.name: min(n.on, key=lambda t: n.on[t].service_s) for n in profile.calls}
    return latency(profile, where, {})[0]


def cases(profile: AgentProfile, rates=RATES, tiers=TIERS) -> list[Case]:
    fastest = fastest_unloaded(profile)
    return [Case(profile.agent, tier, f * fastest, r) for tier, f in tiers.items() for r in rates]


def options(n, types: tuple[str, ...], split: bool) -> list:
    """Where one call may go: a type, or for an LLM call with `split`, a (prefill, decode)
    pair of two different types."""
    one = [t for t in types if t in n.on]
    if not (split and n.splits):
        return one
    return one + [(p, d) for p in one for d in one if p != d]


def placements(profile: AgentProfile, types: tuple[str, ...]):
    """Every placement (call node -> type, or an LLM call's (prefill type, decode type)) on
    `types` (see the module docstring)."""
    calls = profile.calls
    split = len(types) <= SPLIT_TYPES
    per_call = [options(n, types, split) for n in calls]
    if math.prod(len(o) for o in per_call) <= PER_CALL:
        for combo in itertools.product(*per_call):
            yield dict(zip((n.name for n in calls), combo))
        return
    models = list(dict.fromkeys(n.model for n in calls))
    per_model = [[o for o in options(next(n for n in calls if n.model == m), types, split)
                  if all(o in options(n, types, split) for n in calls if n.model == m)] for m in models]
    for combo in itertools.product(*per_model):
        by_model = dict(zip(models, combo))
        yield {n.name: by_model[n.model] for n in calls}


@dataclass
class CaseResult:
    case: Case
    by_kind: dict[str, dict[str, Choice]]  # fleet kind (fleets.kind_of) -> basis -> cheapest, refined
    by_family: dict[str, dict[str, Choice]]  # family -> basis -> cheapest by the queueing model alone
    refined: int = 0  # simulations' refinements run for this case

    def best(self, kind: str, basis: str) -> Choice | None:
        return self.by_kind.get(kind, {}).get(basis)


MAX_REFINED = 6  # candidates refined per kind and basis, cheapest (by the queueing model) first


def search(profile: AgentProfile, case: Case, fams: list[Family], prices: dict[str, dict[str, float]],
           cache: dict, progress: Callable[[], None] | None = None) -> CaseResult:
    """The cheapest fleets for `case`, per kind and per family, under each basis (`prices`:
    basis -> type -> $/h). Per kind, candidates are refined by simulation (check.refine)
    cheapest first, until the next one's unrefined cost is no lower than the best refined
    (a replica more never costs less). `cache` keeps sizings and refinements across calls."""
    res = CaseResult(case, {}, {})
    candidates: dict[str, dict[tuple, Sized]] = {}
    for fam in fams:
        fam_best = res.by_family.setdefault(fam.name, {})
        for where in placements(profile, fam.types):
            key = (tuple(sorted(where.items())), case.rate, case.sla_s)
            if key not in cache:
                s = size(profile, where, case.rate, case.sla_s)
                cache[key] = (s, kind_of(s.busy))
            s, kind = cache[key]
            if not s.feasible:
                continue
            candidates.setdefault(kind, {})[key] = s
            for basis, table in prices.items():
                cost = s.cost_per_hour(table)
                if cost is not None and (basis not in fam_best or cost < fam_best[basis].cost_per_hour):
                    fam_best[basis] = Choice(s, cost)
        if progress:
            progress()
    for kind, found in candidates.items():
        for basis, table in prices.items():
            priced = sorted(((cost, key, s) for key, s in found.items()
                             if (cost := s.cost_per_hour(table)) is not None), key=lambda x: x[0])
            best = None
            for cost, key, s in priced[:MAX_REFINED]:
                if best is not None and cost >= best.cost_per_hour:
                    break
                if ("refined", key) not in cache:
                    cache[("refined", key)] = refine(profile, s, case.rate, case.sla_s)[0]
                    res.refined += 1
                r = cache[("refined", key)]
                rcost = r.cost_per_hour(table)
                if r.feasible and (best is None or rcost < best.cost_per_hour):
                    best = Choice(r, rcost)
            if best is not None:
                res.by_kind.setdefault(kind, {})[basis] = best
    return res

