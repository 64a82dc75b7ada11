"""Exact placement and scheduling with OR-Tools CP-SAT.

The model follows the flexible job-shop formulation: one optional interval per
(task, processor) alternative, exactly one chosen per task, no-overlap (or cumulative, for
processors with capacity > 1) per processor, precedence with the transfer time charged only
when the two tasks sit on processors that do not share memory, and resident weight groups
that must fit each processor's memory. The objective is the makespan, or (objective
"tco") the cost per request of `cost` under a makespan limit (the SLA). A hint (a HEFT
schedule, say) warm-starts the search and the time limit bounds it; the result reports a
lower bound so the gap is visible.

Cost per request: each (task, processor) literal weighs that task's duration x the
processor's rate, and one "used" literal per processor (true as soon as any of its tasks
is) weighs its reservation; under an arrival rate R only "used" is paid (rate / R) and
each processor's busy ticks are capped at capacity / R. Money becomes integers the way
time does (`_money_scale`); the answer's cost is recomputed exactly from the schedule.
The solver's cost bound is reported only when the time model is exact: with rounded-up
durations the model is a restriction under an SLA, and its bound could overshoot.

Times become integer ticks. When a duration is not a whole number of ticks it is rounded
up, so the solver's schedule is feasible; it is then re-timed with the exact durations
(never later), and the solver's bound is corrected for the rounding before it is reported.
The reported bound is the larger of that and the solver-free bound of `bounds`.

Transfers: when every cross-memory pair of processors moves an edge's data in the same
time (the research benchmarks; identical links), the model charges it with one literal
per memory ("both ends here"), linear in the processor count; otherwise one constraint
per consumer processor sums the producer's placement literals, weighted by that pair's
time. A pair with no link where data must move is simply forbidden.
"""

from __future__ import annotations

import math
import time

from ortools.sat.python import cp_model

from agentc.scheduler.bounds import lower_bound as solver_free_bound
from agentc.scheduler.checks import check_graph
from agentc.scheduler.cost import annotate, cost_lower_bound
from agentc.scheduler.listsched import Transfers, retime
from agentc.scheduler.pool import pool_identical, to_pool, unpool
from agentc.scheduler.taskgraph import (
    OBJECTIVES,
    Schedule,
    ScheduleError,
    Slot,
    TaskGraph,
    reaches,
    sharing,
)

LARGE_MODEL_ALTERNATIVES = 1500  # (task, processor) pairs; see the probing note below


def _scale_for(tg: TaskGraph) -> float:
    """Pick an integer time unit: fine enough to keep 1e-3 relative precision on the
    smallest task, coarse enough that the horizon fits comfortably in 64 bits."""
    costs = [c for t in tg.tasks.values() for c in t.cost.values() if c > 0]
    if not costs:
        return 1.0
    if all(float(c).is_integer() for c in costs) and all(
        float(v).is_integer() for v in tg.edges.values()
    ):
        links_integral = all(
            float(lk.latency).is_integer() and (math.isinf(lk.bandwidth) or lk.bandwidth == 1)
            for lk in tg.links.values()
        )
        if links_integral:
            return 1.0
    total = sum(max(t.cost.values()) for t in tg.tasks.values())
    scale = 1000.0 / min(costs)
    return min(scale, 1e9 / max(total, 1e-12))


def _memory_class(tg: TaskGraph, p: str) -> str:
    space = tg.processors[p].memory_space
    return f"space:{space}" if space else f"proc:{p}"


def solve_cpsat(
    tg: TaskGraph,
    time_limit_s: float = 10.0,
    hint: Schedule | None = None,
    workers: int = 2,
    makespan_limit: float | None = None,
    objective: str = "latency",
    arrival_rate: float | None = None,
    known_bound: float | None = None,
    cost_bound: float | None = None,
) -> Schedule:
    """Minimise makespan, or with objective "tco" the cost per request (see `cost`) subject
    to makespan <= `makespan_limit` (required then) and, given `arrival_rate`, every
    processor's utilisation <= 1. Raises ScheduleError when no schedule exists (for example
    when the weights never fit or `makespan_limit` is below what is achievable). The time
    limit is wall-clock and includes building the model. `known_bound` (makespan) and
    `cost_bound` (tco) are the solver-free bounds of `tg` when the caller has them already;
    otherwise they are computed here (each is an LP)."""
    t0 = time.perf_counter()
    check_graph(tg)
    if objective not in OBJECTIVES:
        raise ScheduleError(f"unknown objective '{objective}', expected {', '.join(OBJECTIVES)}")
    if objective == "tco":
        if makespan_limit is None:
            raise ScheduleError("objective 'tco' needs a makespan limit (the SLA)")
        # Pooling would merge processors that are paid (reserved, capped) one by one.
        return _solve_model(
            tg, time_limit_s, hint, workers, makespan_limit, t0, arrival_rate, tco=True,
            known_bound=known_bound, cost_bound=cost_bound,
        )
    if arrival_rate is not None:
        raise ScheduleError("an arrival rate applies only to objective 'tco'")
    pooling = pool_identical(tg)
    if pooling is None:
        return _solve_model(tg, time_limit_s, hint, workers, makespan_limit, t0, known_bound=known_bound)
    pooled_hint = to_pool(pooling, hint) if hint is not None else None
    # tg's bound holds for the pool: every pooled schedule is one of tg's
    sched = _solve_model(pooling.pooled, time_limit_s, pooled_hint, workers, makespan_limit, t0,
                         known_bound=known_bound)
    return annotate(tg, unpool(tg, pooling, sched))


def _money_scale(values: list[float]) -> tuple[float, bool]:
    """Integer unit for costs: (scale, whether every value scales to a whole number)."""
    nonzero = [v for v in values if v > 0]
    if not nonzero:
        return 1.0, True
    if all(float(v).is_integer() for v in nonzero) and sum(nonzero) < 1e15:
        return 1.0, True
    scale = min(1e6 / min(nonzero), 1e12 / sum(nonzero))
    return scale, all(abs(round(v * scale) - v * scale) <= 1e-6 for v in nonzero)


def _solve_model(
    tg, time_limit_s, hint, workers, makespan_limit, t0, arrival_rate=None, tco=False,
    known_bound=None, cost_bound=None,
) -> Schedule:
    scale = _scale_for(tg)
    tr = Transfers(tg)
    exact = True

    def ticks(x: float) -> int:
        nonlocal exact
        scaled = x * scale
        n = math.ceil(scaled - 1e-9)
        if abs(n - scaled) > 1e-6:
            exact = False
        return n

    preds_count = {t: 0 for t in tg.tasks}
    for _, v in tg.edges:
        preds_count[v] += 1
    comm = {}  # (u, v) -> {(p, q): ticks or None for a forbidden pair}
    horizon = sum(ticks(max(t.cost.values())) for t in tg.tasks.values())
    for u, v in tg.edges:
        table = {}
        for p in tg.tasks[u].cost:
            for q in tg.tasks[v].cost:
                c = tr.edge(u, v, p, q)
                table[p, q] = None if math.isinf(c) else ticks(c)
        comm[u, v] = table
        horizon += max((c for c in table.values() if c is not None), default=0)
    if makespan_limit is not None:
        horizon = min(horizon, math.floor(makespan_limit * scale + 1e-9))
    horizon = max(horizon, 0)

    m = cp_model.CpModel()
    # Helper literals and, for each, how its value follows from a placement (task ->
    # processor); used to make a warm start complete, which CP-SAT then takes as is.
    derived: list[tuple[cp_model.IntVar, object]] = []
    start, end, present = {}, {}, {}
    intervals = {p: [] for p in tg.processors}
    for name, task in tg.tasks.items():
        start[name] = m.new_int_var(0, horizon, f"start[{name}]")
        end[name] = m.new_int_var(0, horizon, f"end[{name}]")
        lits = []
        for p, c in task.cost.items():
            lit = m.new_bool_var(f"{name}@{p}")
            iv = m.new_optional_interval_var(
                start[name], ticks(c), end[name], lit, f"run[{name}@{p}]"
            )
            present[name, p] = lit
            intervals[p].append(iv)
            lits.append(lit)
        m.add_exactly_one(lits)

    for p, proc in tg.processors.items():
        if not intervals[p]:
            continue
        if proc.capacity == 1:
            m.add_no_overlap(intervals[p])
        else:
            m.add_cumulative(intervals[p], [1] * len(intervals[p]), proc.capacity)

    for members in sharing(tg.processors).values():  # one task at a time on shared hardware
        m.add_no_overlap([iv for p in members for iv in intervals[p]])

    for (u, v), table in comm.items():
        m.add(start[v] >= end[u])
        for (p, q), c in table.items():
            if c is None:
                m.add_bool_or([present[u, p].Not(), present[v, q].Not()])
        derived += _add_transfer(m, tg, u, v, table, start, end, present)

    # Resident weights: a group occupies a processor's memory once if any task using it
    # runs there.
    for p, proc in tg.processors.items():
        if math.isinf(proc.memory_bytes):
            continue
        groups: dict[str, tuple[float, list, list]] = {}
        for name, task in tg.tasks.items():
            if p not in task.cost:
                continue
            for g, size in task.resident.items():
                entry = groups.setdefault(g, (size, [], []))
                entry[1].append(present[name, p])
                entry[2].append(name)
        terms = []
        for g, (size, lits, users) in groups.items():
            used = m.new_bool_var(f"weights[{g}]@{p}")
            for lit in lits:
                m.add_implication(lit, used)
            terms.append((used, math.ceil(size)))
            derived.append((used, lambda a, users=users, p=p: any(a[t] == p for t in users)))
        if terms:
            m.add(sum(sz * u for u, sz in terms) <= int(proc.memory_bytes))

    # The solver-free bound holds for the rounded model too (rounding only lengthens);
    # stating it lets CP-SAT stop as soon as it meets it.
    if known_bound is None:
        known_bound = solver_free_bound(tg)
    makespan = m.new_int_var(
        min(horizon, math.ceil(known_bound * scale - 1e-6)), horizon, "makespan"
    )
    has_succ = {u for (u, _) in tg.edges}
    sinks = [t for t in tg.tasks if t not in has_succ]
    m.add_max_equality(makespan, [end[t] for t in sinks])
    if tco:
        money = _add_cost(m, tg, present, arrival_rate, derived, ticks, scale)
    else:
        m.minimize(makespan)

    if hint is not None:
        for name, slot in hint.assignment.items():
            if name not in start or slot.processor not in tg.tasks[name].cost:
                continue
            s = min(horizon, ticks(slot.start))
            m.add_hint(start[name], s)
            m.add_hint(end[name], min(horizon, s + ticks(tg.tasks[name].cost[slot.processor])))
            for p in tg.tasks[name].cost:
                m.add_hint(present[name, p], p == slot.processor)
        placed = {t: s.processor for t, s in hint.assignment.items()}
        if set(placed) == set(tg.tasks):
            for var, value in derived:
                m.add_hint(var, value(placed))
        m.add_hint(makespan, min(horizon, ticks(hint.makespan)))

    solver = cp_model.CpSolver()
    # The limit covers building the model too, so a caller's budget is a wall-clock one.
    build_s = time.perf_counter() - t0
    solver.parameters.max_time_in_seconds = max(0.05, float(time_limit_s) - build_s)
    solver.parameters.num_workers = workers
    if sum(len(t.cost) for t in tg.tasks.values()) > LARGE_MODEL_ALTERNATIVES:
        # Presolve probing grows faster than the model: at a few thousand alternatives it
        # alone can eat a 5-10 s budget before the warm start is even loaded.
        solver.parameters.cp_model_probing_level = 0
    status = solver.solve(m)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        reason = (
            "infeasible" if status == cp_model.INFEASIBLE else "no solution within the time limit"
        )
        raise ScheduleError(f"CP-SAT found no schedule: {reason}")

    assignment = {}
    for name, task in tg.tasks.items():
        proc = next(p for p in task.cost if solver.boolean_value(present[name, p]))
        assignment[name] = Slot(
            proc, solver.value(start[name]) / scale, solver.value(end[name]) / scale
        )
    sched = retime(tg, Schedule(assignment, solver.value(makespan) / scale, "cpsat"))
    if tco:
        return _cost_result(
            tg, sched, solver, status, exact, money, makespan_limit, arrival_rate, t0, cost_bound
        )

    bound_ticks = solver.best_objective_bound
    if not exact:
        # Rounding lengthens each task and transfer by under one tick; a chain holds at
        # most n tasks and n - 1 transfers, so the rounded optimum exceeds the real one
        # by less than 2n ticks.
        bound_ticks -= 2 * len(tg.tasks)
    sched.lower_bound = max(bound_ticks / scale, known_bound)
    proved = status == cp_model.OPTIMAL and exact
    sched.status = "optimal" if proved or sched.lower_bound >= sched.makespan - 1e-9 else "feasible"
    if sched.status == "optimal":
        sched.lower_bound = sched.makespan
    sched.solve_time_s = time.perf_counter() - t0
    return annotate(tg, sched)


def _add_cost(m, tg: TaskGraph, present, arrival_rate, derived, ticks, scale):
    """State the cost per request as the objective (and, under an arrival rate, cap each
    processor's busy ticks). Returns (money scale, whether it is exact, how many terms can
    be non-zero at once) for reading the bound back."""
    weights: list[tuple[object, float]] = []
    if arrival_rate is None:
        for (name, p), lit in present.items():
            weights.append((lit, tg.processors[p].cost_per_s * tg.tasks[name].cost[p]))
    used_count = 0
    for p, proc in tg.processors.items():
        lits = [present[t, p] for t, task in tg.tasks.items() if p in task.cost]
        pay = proc.cost_per_s / arrival_rate if arrival_rate is not None else proc.reserve_cost
        if lits and pay > 0:
            used = m.new_bool_var(f"used[{p}]")
            for lit in lits:
                m.add_implication(lit, used)
            m.add_bool_or(lits).only_enforce_if(used)
            derived.append((used, lambda a, p=p: p in a.values()))
            weights.append((used, pay))
            used_count += 1
        if arrival_rate is not None and lits:
            load = [
                (present[t, p], ticks(task.cost[p]))
                for t, task in tg.tasks.items()
                if p in task.cost
            ]
            # busy x R <= capacity, in ticks; the floor is exact for whole ticks
            m.add(
                sum(d * lit for lit, d in load)
                <= math.floor(proc.capacity * scale / arrival_rate + 1e-9)
            )
    money_scale, money_exact = _money_scale([w for _, w in weights])
    m.minimize(sum(round(w * money_scale) * v for v, w in weights if w > 0))
    return money_scale, money_exact, len(tg.tasks) + used_count


def _cost_result(tg, sched, solver, status, exact, money, sla, arrival_rate, t0, cost_bound=None) -> Schedule:
    """The tco schedule with its exact cost and a bound on the cost of any schedule that
    meets the SLA (and the arrival rate)."""
    money_scale, money_exact, terms = money
    annotate(tg, sched, arrival_rate, sla)
    sched.objective = "tco"
    bound = cost_lower_bound(tg, sla, arrival_rate) if cost_bound is None else cost_bound
    if exact:
        # Rounding each weight moves it by at most half a unit.
        slack = 0.0 if money_exact else 0.5 * terms
        bound = max(bound, (solver.best_objective_bound - slack) / money_scale)
    sched.lower_bound = min(max(bound, 0.0), sched.cost)
    proved = status == cp_model.OPTIMAL and exact and money_exact
    if proved or reaches(sched.lower_bound, sched.cost):
        sched.status, sched.lower_bound = "optimal", sched.cost
    else:
        sched.status = "feasible"
    sched.solve_time_s = time.perf_counter() - t0
    return sched


def _add_transfer(m, tg: TaskGraph, u: str, v: str, table: dict, start, end, present) -> list:
    """start[v] >= end[u] + (time to move (u, v)'s data between the chosen processors).
    Returns the helper literals it made, each with how to derive it from a placement."""
    finite = {pq: c for pq, c in table.items() if c is not None}
    cross = {c for (p, q), c in finite.items() if not tg.same_memory(p, q)}
    if not cross or cross == {0}:
        return []
    if len(cross) == 1 and all(c == 0 for (p, q), c in finite.items() if tg.same_memory(p, q)):
        # Uniform: pay c unless both ends sit in one memory.
        (c,) = cross
        classes: dict[str, tuple[list, list]] = {}
        for p in tg.tasks[u].cost:
            classes.setdefault(_memory_class(tg, p), ([], []))[0].append(present[u, p])
        for q in tg.tasks[v].cost:
            classes.setdefault(_memory_class(tg, q), ([], []))[1].append(present[v, q])
        together = []
        for k, (lu, lv) in classes.items():
            if lu and lv:
                b = m.new_bool_var(f"together[{u}->{v}]@{k}")
                m.add(b <= sum(lu))
                m.add(b <= sum(lv))
                together.append(
                    (b, lambda a, k=k: _memory_class(tg, a[u]) == k == _memory_class(tg, a[v]))
                )
        m.add(start[v] >= end[u] + c - c * sum(b for b, _ in together))
        return together
    for q in tg.tasks[v].cost:
        terms = [(present[u, p], c) for (p, qq), c in finite.items() if qq == q and c > 0]
        if terms:
            m.add(start[v] >= end[u] + sum(c * lit for lit, c in terms)).only_enforce_if(
                present[v, q]
            )
    return []
