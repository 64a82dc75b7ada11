"""The scheduling problem every placement algorithm in agentc reads.

A `TaskGraph` is deliberately independent of MLIR: operator placement builds one from the
operator IR plus the cost model, and the research formats (HEFT-style JSON, Kasahara STG)
build one from a file. HEFT, PEFT and CP-SAT all consume this type and return a `Schedule`.

Times are plain floats in one unit chosen by the builder (seconds for placement, the file's
own unit for benchmark graphs). Data volumes on edges are in the unit that the links'
bandwidths divide (bytes for placement; for benchmark graphs the edge weight is already a
time, expressed as a link with bandwidth 1 and latency 0).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import networkx as nx

ALGORITHMS = ("cpsat", "heft", "peft", "cpop", "greedy", "random", "single", "baseline")
OBJECTIVES = ("latency", "tco")
TOL = 1e-9  # relative slack on limits: solver and float arithmetic differ in the last bits


def sla_limit(sla: float) -> float:
    """The largest makespan that still meets `sla`."""
    return sla * (1 + TOL) + 1e-12


def reaches(bound: float, value: float) -> bool:
    """Whether a lower `bound` proves `value` optimal, up to the same slack."""
    return bound >= value * (1 - TOL) - 1e-12


class ScheduleError(ValueError):
    """A task graph or schedule request that cannot be solved as given (bad input)."""


@dataclass(frozen=True)
class Processor:
    """One schedulable resource.

    capacity: how many tasks may run on it at once (a host thread pool has several).
    memory_bytes: what resident model weights may occupy there.
    cost_per_s: what one second of its time costs (for TCO objectives).
    reserve_cost: what having it at all costs per request, charged once per request when
    the placement runs anything on it (its share of a reservation; see `cost`).
    memory_space: processors with the same non-empty memory space move data for free
    (the host and IREE's CPU driver share host memory).
    shares: processors with the same non-empty `shares` compute on the same hardware (a
    machine's CPU device and lavapipe, a Vulkan device on the same cores): one task at a
    time among them, as each alone would use all of it.
    """

    name: str
    capacity: int = 1
    memory_bytes: float = math.inf
    cost_per_s: float = 0.0
    memory_space: str = ""
    reserve_cost: float = 0.0
    shares: str = ""


def sharing(processors: dict) -> dict[str, list[str]]:
    """The groups of processors that share hardware (`Processor.shares`), each of >= 2
    processors that run one task at a time."""
    groups: dict[str, list[str]] = {}
    for p, proc in processors.items():
        if proc.shares and proc.capacity == 1:
            groups.setdefault(proc.shares, []).append(p)
    return {g: ps for g, ps in groups.items() if len(ps) > 1}


@dataclass(frozen=True)
class Link:
    latency: float = 0.0
    bandwidth: float = math.inf


@dataclass
class Task:
    """A unit of work. `cost[p]` is its run time on processor p; a processor absent from
    `cost` cannot run it. `resident` names the weight groups it needs on its processor
    (group name -> bytes): each group occupies a processor's memory once however many
    tasks use it."""

    name: str
    cost: dict[str, float]
    resident: dict[str, float] = field(default_factory=dict)


@dataclass
class TaskGraph:
    tasks: dict[str, Task]
    processors: dict[str, Processor]
    edges: dict[tuple[str, str], float] = field(default_factory=dict)
    links: dict[tuple[str, str], Link] = field(default_factory=dict)

    def graph(self) -> nx.DiGraph:
        g = nx.DiGraph()
        g.add_nodes_from(self.tasks)
        g.add_edges_from(self.edges)
        return g

    def validate(self) -> None:
        """Raise ScheduleError naming the first problem: unknown task or processor, a task
        nothing can run, a cycle, a non-positive bandwidth, a needed link that is missing."""
        for t in self.tasks.values():
            if not t.cost:
                raise ScheduleError(f"task '{t.name}': no processor can run it")
            for p in t.cost:
                if p not in self.processors:
                    raise ScheduleError(f"task '{t.name}': unknown processor '{p}'")
        for u, v in self.edges:
            for n in (u, v):
                if n not in self.tasks:
                    raise ScheduleError(f"edge {u} -> {v}: unknown task '{n}'")
        for (p, q), link in self.links.items():
            if link.bandwidth <= 0:
                raise ScheduleError(f"link {p} -> {q}: bandwidth must be > 0, got {link.bandwidth}")
            if link.latency < 0:
                raise ScheduleError(f"link {p} -> {q}: latency must be >= 0, got {link.latency}")
        g = self.graph()
        if not nx.is_directed_acyclic_graph(g):
            cycle = nx.find_cycle(g)
            raise ScheduleError("cycle: " + " -> ".join([e[0] for e in cycle] + [cycle[0][0]]))

    def same_memory(self, p: str, q: str) -> bool:
        if p == q:
            return True
        a, b = self.processors[p].memory_space, self.processors[q].memory_space
        return bool(a) and a == b

    def comm_time(self, u: str, v: str, p: str, q: str) -> float:
        """Time to move edge (u, v)'s data from processor p to q; 0 within one memory."""
        volume = self.edges.get((u, v), 0.0)
        if self.same_memory(p, q):
            return 0.0
        link = self.links.get((p, q)) or self.links.get((q, p))
        if link is None:
            if volume == 0:
                return 0.0
            raise ScheduleError(
                f"edge {u} -> {v} needs a transfer {p} -> {q}, but no link joins them"
            )
        return link.latency + volume / link.bandwidth

    def predecessors(self) -> dict[str, list[str]]:
        """Task -> the tasks it depends on, in edge order."""
        preds: dict[str, list[str]] = {t: [] for t in self.tasks}
        for u, v in self.edges:
            preds[v].append(u)
        return preds

    def successors(self) -> dict[str, list[str]]:
        """Task -> the tasks that depend on it, in edge order."""
        succs: dict[str, list[str]] = {t: [] for t in self.tasks}
        for u, v in self.edges:
            succs[u].append(v)
        return succs

    def topological_order(self) -> list[str]:
        return list(nx.topological_sort(self.graph()))


@dataclass
class Slot:
    processor: str
    start: float
    end: float


@dataclass
class Schedule:
    """A solved schedule: where and when each task runs.

    `objective` says what was minimised: "latency" (the makespan) or "tco" (`cost`, the
    cost per request). `lower_bound` and `gap` are about that objective. `cost`,
    `busy_time` and `utilisation` are filled in by `solve` for every algorithm with one
    function (`cost.annotate`), so schedules from different algorithms compare.
    """

    assignment: dict[str, Slot]
    makespan: float
    algorithm: str
    status: str = "feasible"  # "optimal" | "feasible" | "heuristic"
    lower_bound: float = 0.0
    solve_time_s: float = 0.0
    objective: str = "latency"
    cost: float = 0.0
    busy_time: dict[str, float] = field(default_factory=dict)
    utilisation: dict[str, float] = field(default_factory=dict)
    sla: float | None = None
    arrival_rate: float | None = None

    @property
    def value(self) -> float:
        """The objective's value: the cost per request for "tco", else the makespan."""
        return self.cost if self.objective == "tco" else self.makespan

    @property
    def gap(self) -> float:
        if self.value <= 0:
            return 0.0
        return max(0.0, (self.value - self.lower_bound) / self.value)

    @property
    def sla_met(self) -> bool | None:
        """None when no SLA was given."""
        if self.sla is None:
            return None
        return self.makespan <= sla_limit(self.sla)

    def to_json(self) -> dict:
        return {
            "algorithm": self.algorithm,
            "objective": self.objective,
            "makespan": self.makespan,
            "cost": self.cost,
            "status": self.status,
            "lower_bound": self.lower_bound,
            "gap": self.gap,
            "sla": self.sla,
            "sla_met": self.sla_met,
            "arrival_rate": self.arrival_rate,
            "busy_time": dict(self.busy_time),
            "utilisation": dict(self.utilisation),
            "solve_time_s": self.solve_time_s,
            "assignment": {
                t: {"processor": s.processor, "start": s.start, "end": s.end}
                for t, s in self.assignment.items()
            },
        }


def check_schedule(tg: TaskGraph, sched: Schedule, tol: float = 1e-6) -> None:
    """Raise ScheduleError if `sched` breaks a dependency, a transfer or a capacity, or
    leaves a task out, puts it where it cannot run, gives it less time than it needs, or
    overfills a processor's memory with resident weights."""
    for name, task in tg.tasks.items():
        s = sched.assignment.get(name)
        if s is None:
            raise ScheduleError(f"task '{name}' is not scheduled")
        if s.processor not in task.cost:
            raise ScheduleError(f"task '{name}' cannot run on {s.processor}")
        if s.end - s.start + tol < task.cost[s.processor]:
            raise ScheduleError(
                f"task '{name}' on {s.processor} needs {task.cost[s.processor]}, "
                f"got {s.end - s.start}"
            )
    for p, proc in tg.processors.items():
        groups: dict[str, float] = {}
        for name, s in sched.assignment.items():
            if s.processor == p:
                for g, size in tg.tasks[name].resident.items():
                    groups[g] = max(size, groups.get(g, 0.0))
        if sum(groups.values()) > proc.memory_bytes:
            raise ScheduleError(
                f"processor {p}: resident weights need {sum(groups.values()):g} bytes, "
                f"it has {proc.memory_bytes:g}"
            )
    for u, v in tg.edges:
        a, b = sched.assignment[u], sched.assignment[v]
        need = a.end + tg.comm_time(u, v, a.processor, b.processor)
        if b.start + tol < need:
            raise ScheduleError(f"{v} starts at {b.start} before its input from {u} at {need}")
    lanes = {p: ([p], proc.capacity) for p, proc in tg.processors.items()}
    lanes.update({g: (ps, 1) for g, ps in sharing(tg.processors).items()})
    for p, (members, capacity) in lanes.items():
        events = []
        for s in sched.assignment.values():
            if s.processor in members and s.end > s.start:
                events += [(s.start, 1), (s.end, -1)]
        running = 0
        for _, d in sorted(events, key=lambda e: (e[0], e[1])):
            running += d
            if running > capacity:
                raise ScheduleError(f"processor {p} runs more than {capacity} tasks at once")
