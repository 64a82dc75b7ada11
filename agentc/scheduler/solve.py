"""One entry point for every scheduling algorithm: `solve(tg, algo=...)`.

For CP-SAT it wraps the exact model in what makes it dependable in practice: the cheap
heuristics run first (baselines, HEFT, PEFT, CPOP), the best of them warm-starts the
solver, and the answer is never worse than that best heuristic; large graphs are coarsened
into chains first. Every returned schedule carries a lower bound that holds for the
original graph (the solver-free bound, and CP-SAT's own bound when the model was exact
and not coarsened), and passes `check_schedule`.
"""

from __future__ import annotations

import time

from agentc.scheduler.baselines import (
    all_baselines,
    priority_greedy,
    random_feasible,
    single_processor_all,
)
from agentc.scheduler.bounds import integral_times, lower_bound
from agentc.scheduler.checks import check_graph
from agentc.scheduler.coarsen import coarsen_chains, expand, project
from agentc.scheduler.cpop import cpop
from agentc.scheduler.cpsat import solve_cpsat
from agentc.scheduler.heft import heft
from agentc.scheduler.peft import peft
from agentc.scheduler.taskgraph import Schedule, ScheduleError, TaskGraph, check_schedule

ALGORITHMS = ("cpsat", "heft", "peft", "cpop", "greedy", "random", "single", "baseline")
COARSEN_ABOVE = 100  # tasks; below this the exact model is small enough as it is
MIN_SOLVER_TIME_S = 0.2


def _heuristics(tg: TaskGraph) -> list[Schedule]:
    out = all_baselines(tg)
    for algo in (heft, peft, cpop):
        try:
            out.append(algo(tg))
        except ScheduleError:
            continue  # e.g. greedy memory use strands a later task; others may not
    return out


def _best(candidates: list[Schedule]) -> Schedule | None:
    return min(candidates, key=lambda s: s.makespan, default=None)


def solve(
    tg: TaskGraph,
    algo: str = "cpsat",
    time_limit_s: float = 10.0,
    workers: int = 2,
    coarsen: bool | None = None,
    seed: int = 0,
) -> Schedule:
    """Schedule `tg` with `algo` (one of ALGORITHMS). `coarsen`: None = only graphs above
    COARSEN_ABOVE tasks (CP-SAT only). Raises ScheduleError on bad input or when nothing
    can place the graph."""
    if algo not in ALGORITHMS:
        raise ScheduleError(f"unknown algorithm '{algo}', expected one of {', '.join(ALGORITHMS)}")
    t0 = time.perf_counter()
    check_graph(tg)
    bound = lower_bound(tg)
    if algo == "cpsat":
        sched = _solve_exact(tg, time_limit_s, workers, coarsen, bound, t0)
    else:
        single = {
            "heft": heft,
            "peft": peft,
            "cpop": cpop,
            "greedy": priority_greedy,
            "random": lambda g: random_feasible(g, seed),
        }
        if algo in single:
            sched = single[algo](tg)
        else:
            pool = single_processor_all(tg) if algo == "single" else all_baselines(tg)
            sched = _best(pool)
            if sched is None:
                raise ScheduleError(f"no {algo} placement exists for this graph")
        sched.lower_bound = bound
    sched.solve_time_s = time.perf_counter() - t0
    check_schedule(tg, sched)
    return sched


def _solve_exact(tg, time_limit_s, workers, coarsen, bound, t0) -> Schedule:
    best = _best(_heuristics(tg))
    use_coarse = coarsen if coarsen is not None else len(tg.tasks) > COARSEN_ABOVE
    c = coarsen_chains(tg) if use_coarse else None
    if c is not None and len(c.coarse.tasks) == len(tg.tasks):
        c = None  # no chains: nothing to gain
    left = max(MIN_SOLVER_TIME_S, time_limit_s - (time.perf_counter() - t0))
    # A makespan limit shrinks every domain; it is safe only when the model is exact, so
    # the warm start is itself a solution under the limit.
    limit = best.makespan if best is not None and integral_times(tg) else None
    try:
        if c is None:
            found = solve_cpsat(tg, left, hint=best, workers=workers, makespan_limit=limit)
        else:
            hints = [] if best is None else [project(tg, c, best)]
            try:
                hints.append(heft(c.coarse))
            except ScheduleError:
                pass
            found = solve_cpsat(
                c.coarse, left, hint=_best(hints), workers=workers, makespan_limit=limit
            )
            found = expand(tg, c, found)
            found.lower_bound = bound  # the coarse model's bound says nothing about tg
            found.status = "optimal" if found.makespan <= bound + 1e-9 else "feasible"
    except ScheduleError:
        if best is None:
            raise
        found = None
    if found is not None and (best is None or found.makespan <= best.makespan + 1e-9):
        found.lower_bound = max(found.lower_bound, bound)
        return found
    # CP-SAT found nothing better in time: keep the warm start, with what was proved.
    kept = Schedule(dict(best.assignment), best.makespan, f"cpsat/{best.algorithm}", "feasible")
    kept.lower_bound = max(bound, found.lower_bound if found is not None and c is None else 0.0)
    if kept.lower_bound >= kept.makespan - 1e-9:
        kept.status = "optimal"
    return kept
