"""Exact placement and scheduling with OR-Tools CP-SAT.

The model follows the flexible job-shop formulation: one optional interval per
(task, processor) alternative, exactly one chosen per task, no-overlap (or cumulative, for
processors with capacity > 1) per processor, precedence with the transfer time charged only
when the two tasks sit on processors that do not share memory, and resident weight groups
that must fit each processor's memory. The objective is the makespan. A hint (a HEFT
schedule, say) warm-starts the search and the time limit bounds it; the result reports the
solver's lower bound so the gap is visible.
"""

from __future__ import annotations

import math
import time

from ortools.sat.python import cp_model

from agentc.scheduler.taskgraph import Schedule, ScheduleError, Slot, TaskGraph


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


def solve_cpsat(
    tg: TaskGraph,
    time_limit_s: float = 10.0,
    hint: Schedule | None = None,
    workers: int = 2,
    makespan_limit: float | None = None,
) -> Schedule:
    """Minimise makespan. Raises ScheduleError when no schedule exists (for example when
    the weights never fit or `makespan_limit` is below what is achievable)."""
    tg.validate()
    t0 = time.perf_counter()
    scale = _scale_for(tg)

    def ticks(x: float) -> int:
        return int(math.ceil(x * scale - 1e-9))

    horizon = sum(ticks(max(t.cost.values())) for t in tg.tasks.values())
    procs = list(tg.processors)
    horizon += sum(
        ticks(max((tg.comm_time(u, v, p, q) for p in tg.tasks[u].cost for q in tg.tasks[v].cost)))
        for (u, v) in tg.edges
    )
    horizon = max(horizon, 1)

    m = cp_model.CpModel()
    start, end, present, intervals = {}, {}, {}, {p: [] for p in procs}
    demands = {p: [] for p in procs}
    for name, task in tg.tasks.items():
        start[name] = m.new_int_var(0, horizon, f"start[{name}]")
        end[name] = m.new_int_var(0, horizon, f"end[{name}]")
        lits = []
        for p, c in task.cost.items():
            lit = m.new_bool_var(f"{name}@{p}")
            iv = m.new_optional_interval_var(start[name], ticks(c), end[name], lit, f"run[{name}@{p}]")
            present[name, p] = lit
            intervals[p].append(iv)
            demands[p].append(1)
            lits.append(lit)
        m.add_exactly_one(lits)

    for p, proc in tg.processors.items():
        if not intervals[p]:
            continue
        if proc.capacity == 1:
            m.add_no_overlap(intervals[p])
        else:
            m.add_cumulative(intervals[p], demands[p], proc.capacity)

    for (u, v) in tg.edges:
        m.add(start[v] >= end[u])
        for p in tg.tasks[u].cost:
            for q in tg.tasks[v].cost:
                comm = ticks(tg.comm_time(u, v, p, q))
                if comm > 0:
                    m.add(start[v] >= end[u] + comm).only_enforce_if(
                        [present[u, p], present[v, q]]
                    )

    # Resident weights: a group occupies a processor's memory once if any task using it
    # runs there.
    for p, proc in tg.processors.items():
        if math.isinf(proc.memory_bytes):
            continue
        groups: dict[str, tuple[float, list]] = {}
        for name, task in tg.tasks.items():
            if p not in task.cost:
                continue
            for g, size in task.resident.items():
                groups.setdefault(g, (size, []))[1].append(present[name, p])
        terms = []
        for g, (size, lits) in groups.items():
            used = m.new_bool_var(f"weights[{g}]@{p}")
            for lit in lits:
                m.add_implication(lit, used)
            terms.append((used, int(math.ceil(size))))
        if terms:
            m.add(sum(int(sz) * u for u, sz in terms) <= int(proc.memory_bytes))

    makespan = m.new_int_var(0, horizon, "makespan")
    m.add_max_equality(makespan, [end[t] for t in tg.tasks])
    if makespan_limit is not None:
        m.add(makespan <= int(math.floor(makespan_limit * scale + 1e-9)))
    m.minimize(makespan)

    if hint is not None:
        for name, slot in hint.assignment.items():
            if name not in start:
                continue
            m.add_hint(start[name], min(horizon, ticks(slot.start)))
            for p in tg.tasks[name].cost:
                m.add_hint(present[name, p], p == slot.processor)

    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = float(time_limit_s)
    solver.parameters.num_workers = workers
    status = solver.solve(m)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        reason = "infeasible" if status == cp_model.INFEASIBLE else "no solution within the time limit"
        raise ScheduleError(f"CP-SAT found no schedule: {reason}")

    assignment = {}
    for name, task in tg.tasks.items():
        proc = next(p for p in task.cost if solver.boolean_value(present[name, p]))
        assignment[name] = Slot(proc, solver.value(start[name]) / scale, solver.value(end[name]) / scale)
    return Schedule(
        assignment=assignment,
        makespan=solver.value(makespan) / scale,
        algorithm="cpsat",
        status="optimal" if status == cp_model.OPTIMAL else "feasible",
        lower_bound=solver.best_objective_bound / scale,
        solve_time_s=time.perf_counter() - t0,
    )
