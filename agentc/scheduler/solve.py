"""One entry point for every scheduling algorithm: `solve(tg, algo=...)`.

For CP-SAT it wraps the exact model in what makes it dependable in practice: the cheap
heuristics run first (baselines, HEFT, PEFT, CPOP) and the best of them warm-starts the
solver, so the answer is never worse than that best heuristic. Graphs above COARSEN_ABOVE
tasks are first solved with chains merged into placement units (see `coarsen`), for half
of the time left; the full model then gets the rest, warm-started from that. Every
returned schedule carries a lower bound that holds for the original graph (the
solver-free bounds of `bounds`, and CP-SAT's own bound from the full model only), and
passes `check_schedule`.

Objectives: "latency" minimises the makespan (an `sla` is then only checked and
reported). "tco" minimises the cost per request (`cost`) subject to makespan <= `sla`,
and with an `arrival_rate` to every processor keeping up with the requests (utilisation
<= 1). For tco the warm start is the cheapest heuristic schedule that meets those limits;
when none does, a latency solve first decides whether the SLA can be met at all, and
when it cannot, the error is an `explain.SlaError` carrying the `SlaReport` that says
by how much and why. Every schedule, whatever the algorithm, carries `cost`, `busy_time`
and `utilisation` computed by `cost.annotate`, so they compare.
"""

from __future__ import annotations

import math
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
from agentc.scheduler.cost import annotate, cost_lower_bound, within_limits
from agentc.scheduler.cpop import cpop
from agentc.scheduler.cpsat import solve_cpsat
from agentc.scheduler.explain import SlaError, explain_sla
from agentc.scheduler.heft import heft
from agentc.scheduler.peft import peft
from agentc.scheduler.taskgraph import (
    ALGORITHMS,
    OBJECTIVES,
    Schedule,
    ScheduleError,
    TaskGraph,
    check_schedule,
    reaches,
    sla_limit,
)

COARSEN_ABOVE = 100  # tasks; below this the exact model is small enough as it is
MIN_SOLVER_TIME_S = 0.2
COARSE_SHARE = 0.5  # of the time left after the heuristics, for the coarse model
MIN_FINE_TIME_S = 1.0  # below this, the full model would not even load its warm start


def _heuristics(tg: TaskGraph, hint: Schedule | None = None) -> list[Schedule]:
    """Baselines, HEFT, PEFT, CPOP, and `hint` (a caller's schedule, e.g. the placement
    before a device was lost, repaired): the best warm-starts CP-SAT."""
    out = all_baselines(tg) + ([hint] if hint is not None else [])
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
    objective: str = "latency",
    sla: float | None = None,
    arrival_rate: float | None = None,
    hint: Schedule | None = None,
) -> Schedule:
    """Schedule `tg` with `algo` (one of ALGORITHMS) for `objective` (one of OBJECTIVES).
    `coarsen`: None = only graphs above COARSEN_ABOVE tasks (CP-SAT, latency only).
    `sla`: the makespan allowed (required for "tco"); `arrival_rate`: requests per second
    ("tco" only), which makes processors reserved and caps their utilisation at 1.
    `hint`: a feasible schedule of `tg` to start from (with "cpsat"), among the heuristics'.
    Raises ScheduleError on bad input or when nothing can place the graph, and SlaError
    (a ScheduleError, with `.report`) when no tco schedule meets the limits. A heuristic
    `algo` places tasks its own way; with "tco" the pools ("single", "baseline") return
    their cheapest member within the limits."""
    if algo not in ALGORITHMS:
        raise ScheduleError(f"unknown algorithm '{algo}', expected one of {', '.join(ALGORITHMS)}")
    if objective not in OBJECTIVES:
        raise ScheduleError(
            f"unknown objective '{objective}', expected one of {', '.join(OBJECTIVES)}"
        )
    for what, x in (("sla", sla), ("arrival_rate", arrival_rate)):
        if x is not None and not (isinstance(x, (int, float)) and math.isfinite(x) and x > 0):
            raise ScheduleError(f"{what} must be a finite number > 0, got {x}")
    if objective == "tco" and sla is None:
        raise ScheduleError(
            "objective 'tco' needs an SLA (sla=seconds): it minimises cost per request "
            "subject to makespan <= sla"
        )
    if objective == "latency" and arrival_rate is not None:
        raise ScheduleError("arrival_rate applies only to objective 'tco'")
    t0 = time.perf_counter()
    check_graph(tg)
    if objective == "tco":
        sched = _solve_tco(tg, algo, time_limit_s, workers, seed, sla, arrival_rate, t0, hint)
    else:
        bound = lower_bound(tg)
        if algo == "cpsat":
            sched = _solve_exact(tg, time_limit_s, workers, coarsen, bound, t0, hint)
        else:
            pool = _run_heuristic(tg, algo, seed)
            sched = _best(pool)
            if sched is None:
                raise ScheduleError(f"no {algo} placement exists for this graph")
            sched.lower_bound = bound
        annotate(tg, sched, sla=sla)
    sched.solve_time_s = time.perf_counter() - t0
    check_schedule(tg, sched)
    return sched


def _run_heuristic(tg: TaskGraph, algo: str, seed: int) -> list[Schedule]:
    """The schedules heuristic `algo` offers: one, or a pool for "single"/"baseline"."""
    single = {
        "heft": heft,
        "peft": peft,
        "cpop": cpop,
        "greedy": priority_greedy,
        "random": lambda g: random_feasible(g, seed),
    }
    if algo in single:
        return [single[algo](tg)]
    return single_processor_all(tg) if algo == "single" else all_baselines(tg)


def _solve_tco(tg, algo, time_limit_s, workers, seed, sla, arrival_rate, t0, hint=None) -> Schedule:
    """Cheapest schedule within the SLA (and arrival rate); see the module docstring."""

    def left() -> float:
        return time_limit_s - (time.perf_counter() - t0)

    candidates = _heuristics(tg, hint) if algo == "cpsat" else _run_heuristic(tg, algo, seed)
    for c in candidates:
        annotate(tg, c, arrival_rate, sla)
    ok = [c for c in candidates if within_limits(c, sla, arrival_rate)]
    best = min(ok, key=lambda s: (s.cost, s.makespan), default=None)
    bound = lp_bound = cost_lower_bound(tg, sla, arrival_rate)
    if algo != "cpsat":
        if best is None:
            fastest = _best(candidates)
            raise _unmet(tg, sla, arrival_rate, fastest, algo)
        return _tco_result(tg, best, best.algorithm, "heuristic", bound, sla, arrival_rate)

    fastest = None
    makespan_bound = lower_bound(tg)  # for both solves below, computed once
    if best is None:
        # Nothing cheap meets the limits: find out whether anything can, and if the SLA
        # itself is out of reach, say why.
        budget = max(MIN_SOLVER_TIME_S, left() / 2)
        fastest = _solve_exact(tg, budget, workers, None, makespan_bound, time.perf_counter())
        annotate(tg, fastest, arrival_rate, sla)
        if fastest.lower_bound > sla_limit(sla) or math.isinf(bound):
            raise _unmet(tg, sla, arrival_rate, fastest, algo)
        if within_limits(fastest, sla, arrival_rate):
            best = fastest
    elif math.isinf(bound):  # a heuristic met what the relaxation rules out: tolerance
        bound = 0.0
    found = None
    try:
        found = solve_cpsat(
            tg,
            max(MIN_SOLVER_TIME_S, left()),
            hint=best,
            workers=workers,
            makespan_limit=sla,
            objective="tco",
            arrival_rate=arrival_rate,
            known_bound=makespan_bound,
            cost_bound=lp_bound,
        )
    except ScheduleError:
        if best is None:
            raise _unmet(tg, sla, arrival_rate, fastest, algo) from None
    if found is not None and within_limits(found, sla, arrival_rate):
        bound = max(bound, found.lower_bound)
        if best is None or found.cost <= sla_limit(best.cost):
            return _tco_result(tg, found, "cpsat", found.status, bound, sla, arrival_rate)
    return _tco_result(tg, best, f"cpsat/{best.algorithm}", "feasible", bound, sla, arrival_rate)


def _tco_result(tg, sched, name, status, bound, sla, arrival_rate) -> Schedule:
    result = Schedule(dict(sched.assignment), sched.makespan, name, status, objective="tco")
    annotate(tg, result, arrival_rate, sla)
    result.lower_bound = min(bound, result.cost)
    if reaches(result.lower_bound, result.cost):
        result.status, result.lower_bound = "optimal", result.cost
    return result


def _unmet(tg, sla, arrival_rate, fastest, algo) -> SlaError:
    """The error for "nothing met the limits", explained from the fastest schedule."""
    report = explain_sla(tg, sla, schedule=fastest)
    if report.reachable and arrival_rate is not None:
        message = (
            f"{algo}: no schedule found that meets SLA {sla:g} and keeps every processor's "
            f"utilisation <= 1 at {arrival_rate:g} requests/s ({report.headline()})"
        )
    elif report.reachable:
        message = f"{algo}: no schedule within SLA {sla:g} found in time ({report.headline()})"
    else:
        message = f"{report.headline()}; {report.binding_line()}"
    return SlaError(message, report)


def _solve_exact(tg, time_limit_s, workers, coarsen, bound, t0, hint=None) -> Schedule:
    """Heuristics, then CP-SAT on the chain-coarsened graph (large graphs), then CP-SAT on
    the graph itself with whatever time is left, each phase warm-started from the best
    schedule so far. Only the last phase can prove anything about tg beyond `bound`."""
    best = _best(_heuristics(tg, hint))
    if best is not None and bound >= best.makespan - 1e-9:
        # A heuristic already meets the solver-free bound (one device, say): optimal, and
        # no model to build.
        return Schedule(dict(best.assignment), best.makespan, f"cpsat/{best.algorithm}", "optimal",
                        best.makespan)
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
                tg, max(MIN_SOLVER_TIME_S, left()), hint=best, workers=workers, makespan_limit=limit,
                known_bound=bound,
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
