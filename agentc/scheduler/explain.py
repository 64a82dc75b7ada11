"""Why a latency SLA cannot be met: `explain_sla(tg, sla)`.

"Infeasible" is no answer for someone choosing hardware. What they need is the best
latency there is (and a proof that nothing does better: the lower bound), the chain of
work that sets it, and what that chain is waiting on, so they know what to buy:

- "compute": the path is mostly task run time; faster processors would help;
- "memory": a task on the path runs away from its fastest processor because that
  processor cannot hold its weights (next to the weights already there); more memory
  would help;
- "link": the path is mostly transfers between memory spaces; a faster link would help.

Each is measured in time on the critical path: transfers for "link", the time lost by
tasks pushed off their fastest processor by memory for "memory", the rest of the run
time for "compute"; the largest share is the binding one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from agentc.scheduler.bounds import lower_bound as solver_free_bound
from agentc.scheduler.taskgraph import TOL, Schedule, ScheduleError, TaskGraph, sla_limit


@dataclass(frozen=True)
class Step:
    """One stretch of the critical path. kind "run": `task` on `processor`; "transfer":
    `task` is "u -> v", `processor` is "p -> q" and `link` the pair of processors;
    "wait": idle time the schedule leaves (none in a left-justified schedule)."""

    task: str
    processor: str
    start: float
    end: float
    kind: str = "run"
    link: tuple[str, str] | None = None
    fastest: float = 0.0  # a run's time on its fastest processor

    @property
    def duration(self) -> float:
        return self.end - self.start


@dataclass(frozen=True)
class MemoryBlock:
    """`task` runs on `runs_on` because its fastest processor cannot hold its weights:
    they would need `need` bytes there, it has `memory_bytes`."""

    task: str
    fastest: str
    runs_on: str
    need: float
    memory_bytes: float
    lost: float  # run time on runs_on minus run time on fastest


@dataclass
class SlaReport:
    sla: float
    best_latency: float
    lower_bound: float
    path: list[Step]
    binding: str  # "compute" | "memory" | "link"
    compute_time: float
    memory_time: float
    link_time: float
    blocked: list[MemoryBlock] = field(default_factory=list)
    schedule: Schedule | None = None

    @property
    def reachable(self) -> bool:
        return self.best_latency <= sla_limit(self.sla)

    @property
    def proven_unreachable(self) -> bool:
        return self.lower_bound > sla_limit(self.sla)

    def headline(self) -> str:
        best, lb, sla = self.best_latency, self.lower_bound, self.sla
        if self.proven_unreachable:
            return (
                f"SLA {sla:g} is unreachable: the best achievable latency is {best:g} "
                f"(proven lower bound {lb:g})"
            )
        if not self.reachable:
            return (
                f"SLA {sla:g} was not met: the best latency found is {best:g} "
                f"(lower bound {lb:g}, so it may be reachable with more search time)"
            )
        return f"SLA {sla:g} is met: the best latency found is {best:g} (lower bound {lb:g})"

    def binding_line(self) -> str:
        total = sum(s.duration for s in self.path)
        shares = (
            f"compute {self.compute_time:g}, memory {self.memory_time:g}, "
            f"link {self.link_time:g} of {total:g} on the critical path"
        )
        if self.binding == "link":
            worst = max((s for s in self.path if s.kind == "transfer"), key=lambda s: s.duration)
            detail = f"largest transfer {worst.task} over {worst.processor}: {worst.duration:g}"
        elif self.binding == "memory":
            b = max(self.blocked, key=lambda b: b.lost)
            detail = (
                f"task '{b.task}' needs {b.need:g} bytes on its fastest processor {b.fastest}, "
                f"which holds {b.memory_bytes:g}; it runs on {b.runs_on}, {b.lost:g} slower"
            )
        else:
            fastest = sum(s.fastest for s in self.path if s.kind == "run")
            detail = f"the path's tasks take {fastest:g} even on their fastest processors"
        return f"binding resource: {self.binding} ({shares}); {detail}"

    def __str__(self) -> str:
        lines = [self.headline(), self.binding_line(), "critical path:"]
        for s in self.path:
            what = {"run": f"{s.task} on {s.processor}", "wait": "idle"}.get(
                s.kind, f"{s.task} over {s.processor}"
            )
            lines.append(f"  {s.start:>10g} {s.end:>10g}  {s.kind:<8}  {what}")
        return "\n".join(lines)


class SlaError(ScheduleError):
    """No schedule meets the SLA; `report` says how close one gets and why."""

    def __init__(self, message: str, report: SlaReport):
        super().__init__(message)
        self.report = report


def critical_path(tg: TaskGraph, sched: Schedule) -> list[Step]:
    """The chain of runs and transfers that ends at the makespan, found by walking back
    from the last task to whatever made each step start when it did: an input arriving
    (a run plus, across memory spaces, a transfer) or its processor becoming free."""
    if not sched.assignment:
        return []
    preds = tg.predecessors()
    pos = {t: i for i, t in enumerate(tg.topological_order())}
    by_proc: dict[str, list[str]] = {}
    for t, s in sched.assignment.items():
        by_proc.setdefault(s.processor, []).append(t)
    t = max(sched.assignment, key=lambda t: (sched.assignment[t].end, pos[t]))
    steps: list[Step] = []
    seen = set()
    while t is not None and t not in seen:
        seen.add(t)
        s = sched.assignment[t]
        steps.append(Step(t, s.processor, s.start, s.end, fastest=min(tg.tasks[t].cost.values())))
        if s.start <= TOL:
            break
        # the input that arrived last, and when
        data = []
        for u in preds[t]:
            a = sched.assignment[u]
            data.append((a.end + tg.comm_time(u, t, a.processor, s.processor), pos[u], u))
        # the task on the same processor that ended last before t started
        queue = [
            (sched.assignment[o].end, pos[o], o)
            for o in by_proc[s.processor]
            if o != t
            and o not in seen
            and sched.assignment[o].end <= s.start + TOL
            and sched.assignment[o].end > sched.assignment[o].start
        ]
        arrived = max(data, default=None)
        freed = max(queue, default=None)
        ready = max(x[0] for x in (arrived, freed, (0.0, 0, None)) if x is not None)
        if ready < s.start - TOL:
            steps.append(Step("", s.processor, ready, s.start, "wait"))
        if arrived is not None and arrived[0] >= ready - TOL:
            u = arrived[2]
            a = sched.assignment[u]
            if arrived[0] > a.end + TOL:
                steps.append(
                    Step(
                        f"{u} -> {t}",
                        f"{a.processor} -> {s.processor}",
                        a.end,
                        arrived[0],
                        "transfer",
                        (a.processor, s.processor),
                    )
                )
            t = u
        elif freed is not None and freed[0] >= ready - TOL:
            t = freed[2]
        else:
            t = None
    steps.reverse()
    return steps


def _memory_block(tg: TaskGraph, sched: Schedule, t: str) -> MemoryBlock | None:
    """Why `t` is not on its fastest processor, if the reason is memory."""
    task = tg.tasks[t]
    here = sched.assignment[t].processor
    fastest = min(task.cost, key=lambda p: task.cost[p])
    if task.cost[here] <= task.cost[fastest] + TOL or not task.resident:
        return None
    mem = tg.processors[fastest].memory_bytes
    held: dict[str, float] = {}
    for o, s in sched.assignment.items():
        if s.processor == fastest and o != t:
            for g, size in tg.tasks[o].resident.items():
                held[g] = max(size, held.get(g, 0.0))
    own = sum(task.resident.values())
    if own > mem:
        need = own
    else:
        extra = sum(size for g, size in task.resident.items() if g not in held)
        need = sum(held.values()) + extra
        if need <= mem:
            return None
    return MemoryBlock(t, fastest, here, need, mem, task.cost[here] - task.cost[fastest])


def explain_sla(tg: TaskGraph, sla: float, schedule: Schedule) -> SlaReport:
    """How close to `sla` the graph can get, and what binds. `schedule`: the best latency
    schedule at hand (solved for latency, so its `lower_bound` is on the makespan; the
    solver reports through this module, so it comes from the caller)."""
    bound = solver_free_bound(tg)
    if schedule.objective == "latency":
        bound = max(bound, schedule.lower_bound)
    bound = min(bound, schedule.makespan)
    path = critical_path(tg, schedule)
    link_time = sum(s.duration for s in path if s.kind == "transfer")
    blocked = []
    for s in path:
        if s.kind == "run":
            b = _memory_block(tg, schedule, s.task)
            if b is not None:
                blocked.append(b)
    memory_time = sum(b.lost for b in blocked)
    run_time = sum(s.duration for s in path if s.kind == "run")
    compute_time = max(0.0, run_time - memory_time)
    shares = {"compute": compute_time, "memory": memory_time, "link": link_time}
    binding = max(shares, key=lambda k: shares[k])  # ties go to compute, then memory
    return SlaReport(
        sla=sla,
        best_latency=schedule.makespan,
        lower_bound=bound,
        path=path,
        binding=binding,
        compute_time=compute_time,
        memory_time=memory_time,
        link_time=link_time,
        blocked=blocked,
        schedule=schedule,
    )
