"""One entry point for every scheduling algorithm: `solve(tg, algo=...)`.

For CP-SAT it wraps the exact model in what makes it dependable in practice: the cheap
heuristics run first (baselines, HEFT, PEFT, CPOP) and the best of them warm-starts the
solver, so the answer is never worse than that best heuristic. Graphs above COARSEN_ABOVE
tasks are first solved with chains merged into placement units (see `coarsen`), for half
of the time left; the full model then gets the rest, warm-started from that. Every
returned schedule carries a lower bound that holds for the original graph (the
solver-free bounds of `bounds`, and CP-SAT's own bound from the full model only), and
passes `check_schedule`.
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
COARSE_SHARE = 0.5  # of the time left after the heuristics, for the coarse model
MIN_FINE_TIME_S = 1.0  # below this, the full model would not even load its warm start


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
    """Heuristics, then CP-SAT on the chain-coarsened graph (large graphs), then CP-SAT on
    the graph itself with whatever time is left, each phase warm-started from the best
    schedule so far. Only the last phase can prove anything about tg beyond `bound`."""
    best = _best(_heuristics(tg))
    from_solver = False
    proven = bound

    def left() -> float:
        return time_limit_s - (time.perf_counter() - t0)

    use_coarse = coarsen if coarsen is not None else len(tg.tasks) > COARSEN_ABOVE
    c = coarsen_chains(tg) if use_coarse else None
    if c is not None and len(c.coarse.tasks) < len(tg.tasks):
        hints = [] if best is None else [project(tg, c, best)]
        try:
            hints.append(heft(c.coarse))
        except ScheduleError:
            pass
        # Short budgets go to the coarse model alone; the full model needs time to load.
        share = COARSE_SHARE if left() >= 2 * MIN_FINE_TIME_S else 1.0
        budget = max(MIN_SOLVER_TIME_S, share * left())
        try:
            coarse = solve_cpsat(c.coarse, budget, hint=_best(hints), workers=workers)
        except ScheduleError:
            coarse = None  # e.g. a chain's weights together fit nowhere; the fine model decides
        if coarse is not None:
            cand = expand(tg, c, coarse)
            if best is None or cand.makespan < best.makespan - 1e-9:
                best, from_solver = cand, True
    else:
        c = None

    if c is None or left() >= MIN_FINE_TIME_S:
        # A makespan limit shrinks every domain; it is safe only when the model is exact,
        # so the warm start is itself a solution under the limit.
        limit = best.makespan if best is not None and integral_times(tg) else None
        try:
            found = solve_cpsat(
                tg, max(MIN_SOLVER_TIME_S, left()), hint=best, workers=workers, makespan_limit=limit
            )
        except ScheduleError:
            if best is None:
                raise
            found = None
        if found is not None:
            proven = max(proven, found.lower_bound)
            if best is None or found.makespan <= best.makespan + 1e-9:
                best, from_solver = found, True

    name = "cpsat" if from_solver else f"cpsat/{best.algorithm}"
    result = Schedule(dict(best.assignment), best.makespan, name, "feasible", proven)
    if proven >= result.makespan - 1e-9:
        result.status, result.lower_bound = "optimal", result.makespan
    return result
