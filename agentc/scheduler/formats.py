"""Readers for the research task-graph formats, each returning a `TaskGraph`.

The scheduler is checked against published results, so it must read the instances those
results were published on, exactly: the HEFT-paper JSON (`heft_topcuoglu.json`,
`peft_arabnejad.json`) and the Kasahara Standard Task Graph (`.stg`) set. A malformed file
fails with one line naming the file and the line or field at fault; an instance that is
well formed but unschedulable (cycle, bad link, missing link) fails with the check's
message prefixed by the file name.

JSON format (keys beyond the published files are optional extensions):
  tasks:      [name, ...]
  processors: [name | {name, capacity, memory_bytes, memory_space, cost_per_s,
               reserve_cost}, ...]   cost_per_s: price of a second of its time;
              reserve_cost: price per request of using it at all (see `cost`)
  comp_cost:  {task: [cost per processor, null = cannot run] | {processor: cost}}
  edges:      [[u, v, cost], ...]   the cost is paid only across processors
  links:      [[p, q, latency, bandwidth], ...]   default: every pair, latency 0,
              bandwidth 1, so an edge's cost is its transfer time
  resident:   {task: {weight group: bytes}}
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from agentc.scheduler.checks import check_graph
from agentc.scheduler.taskgraph import Link, Processor, ScheduleError, Task, TaskGraph


def _number(where: str, x, minimum: float = 0.0) -> float:
    if (
        isinstance(x, bool)
        or not isinstance(x, (int, float))
        or not math.isfinite(x)
        or x < minimum
    ):
        raise ScheduleError(
            f"{where}: expected a finite number >= {minimum:g}, got {json.dumps(x)}"
        )
    return float(x)


def _checked(tg: TaskGraph, name: str) -> TaskGraph:
    try:
        check_graph(tg)
    except ScheduleError as e:
        raise ScheduleError(f"{name}: {e}") from None
    return tg


def read_dag_json(path: str | Path) -> TaskGraph:
    path = Path(path)
    name = path.name
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise ScheduleError(f"{path}: cannot read: {e.strerror}") from None
    except UnicodeDecodeError as e:
        raise ScheduleError(f"{name}: not UTF-8 text (byte {e.start}); expected a JSON task graph") from None
    except json.JSONDecodeError as e:
        raise ScheduleError(f"{name}:{e.lineno}: invalid JSON: {e.msg}") from None
    if not isinstance(data, dict):
        raise ScheduleError(f"{name}: expected a JSON object at the top level")
    for key, kind in (("tasks", list), ("processors", list), ("comp_cost", dict), ("edges", list)):
        if key not in data:
            raise ScheduleError(f"{name}: missing field '{key}'")
        if not isinstance(data[key], kind):
            raise ScheduleError(
                f"{name}: {key}: expected a JSON {kind.__name__.replace('dict', 'object')}"
            )

    procs: dict[str, Processor] = {}
    for i, spec in enumerate(data["processors"]):
        where = f"{name}: processors[{i}]"
        if isinstance(spec, str):
            spec = {"name": spec}
        if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
            raise ScheduleError(f"{where}: expected a name or an object with a 'name'")
        unknown = set(spec) - {
            "name",
            "capacity",
            "memory_bytes",
            "memory_space",
            "cost_per_s",
            "reserve_cost",
        }
        if unknown:
            raise ScheduleError(f"{where}: unknown field '{min(unknown)}'")
        cap = spec.get("capacity", 1)
        if isinstance(cap, bool) or not isinstance(cap, int) or cap < 1:
            raise ScheduleError(
                f"{where}.capacity: expected an integer >= 1, got {json.dumps(cap)}"
            )
        if spec["name"] in procs:
            raise ScheduleError(f"{where}: duplicate processor '{spec['name']}'")
        procs[spec["name"]] = Processor(
            spec["name"],
            capacity=cap,
            memory_bytes=(
                _number(f"{where}.memory_bytes", spec["memory_bytes"])
                if "memory_bytes" in spec
                else math.inf
            ),
            cost_per_s=_number(f"{where}.cost_per_s", spec.get("cost_per_s", 0.0)),
            memory_space=str(spec.get("memory_space", "")),
            reserve_cost=_number(f"{where}.reserve_cost", spec.get("reserve_cost", 0.0)),
        )
    order = list(procs)

    tasks: dict[str, Task] = {}
    for i, t in enumerate(data["tasks"]):
        if not isinstance(t, str):
            raise ScheduleError(f"{name}: tasks[{i}]: expected a task name, got {json.dumps(t)}")
        if t in tasks:
            raise ScheduleError(f"{name}: tasks[{i}]: duplicate task '{t}'")
        tasks[t] = Task(t, {})
    for t, costs in data["comp_cost"].items():
        where = f"{name}: comp_cost.{t}"
        if t not in tasks:
            raise ScheduleError(f"{where}: unknown task '{t}'")
        if isinstance(costs, list):
            if len(costs) != len(order):
                raise ScheduleError(
                    f"{where}: expected {len(order)} costs (one per processor), got {len(costs)}"
                )
            costs = {p: c for p, c in zip(order, costs) if c is not None}
        if not isinstance(costs, dict):
            raise ScheduleError(f"{where}: expected a list or an object of costs")
        tasks[t].cost = {p: _number(f"{where}.{p}", c) for p, c in costs.items()}
    for t in tasks:
        if t not in data["comp_cost"]:
            raise ScheduleError(f"{name}: comp_cost: missing costs for task '{t}'")
    for t, groups in data.get("resident", {}).items():
        if t not in tasks or not isinstance(groups, dict):
            raise ScheduleError(
                f"{name}: resident.{t}: expected a known task mapped to {{group: bytes}}"
            )
        tasks[t].resident = {g: _number(f"{name}: resident.{t}.{g}", b) for g, b in groups.items()}

    edges: dict[tuple[str, str], float] = {}
    for i, e in enumerate(data["edges"]):
        where = f"{name}: edges[{i}]"
        if not isinstance(e, list) or len(e) != 3:
            raise ScheduleError(f"{where}: expected [source, target, cost], got {json.dumps(e)}")
        u, v, c = e
        for n in (u, v):
            if n not in tasks:
                raise ScheduleError(f"{where}: unknown task {json.dumps(n)}")
        if (u, v) in edges:
            raise ScheduleError(f"{where}: duplicate edge {u} -> {v}")
        edges[u, v] = _number(f"{where} cost", c)

    links: dict[tuple[str, str], Link] = {}
    if "links" in data:
        for i, lk in enumerate(data["links"]):
            where = f"{name}: links[{i}]"
            if not isinstance(lk, list) or len(lk) != 4:
                raise ScheduleError(
                    f"{where}: expected [p, q, latency, bandwidth], got {json.dumps(lk)}"
                )
            p, q, lat, bw = lk
            for n in (p, q):
                if n not in procs:
                    raise ScheduleError(f"{where}: unknown processor {json.dumps(n)}")
            for x, what in ((lat, "latency"), (bw, "bandwidth")):
                if isinstance(x, bool) or not isinstance(x, (int, float)):
                    raise ScheduleError(f"{where}: {what} must be a number, got {json.dumps(x)}")
            links[p, q] = Link(float(lat), float(bw))
    else:
        links = {(p, q): Link(0.0, 1.0) for i, p in enumerate(order) for q in order[i + 1 :]}
    return _checked(TaskGraph(tasks, procs, edges, links), name)


def read_stg(path: str | Path, processors: int) -> TaskGraph:
    """A Kasahara STG file on `processors` identical processors P1..Pn, no communication.

    Line 1 holds n; then n + 2 lines `id time n_pred pred...` (task 0 and n + 1 are the
    dummy entry and exit, of time 0, kept as tasks t0 and t<n+1>); `#` lines are comments.
    """
    path = Path(path)
    name = path.name
    if isinstance(processors, bool) or not isinstance(processors, int) or processors < 1:
        raise ScheduleError(
            f"{name}: the number of processors must be an integer >= 1, got {processors}"
        )
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ScheduleError(f"{path}: cannot read: {e.strerror}") from None
    except UnicodeDecodeError as e:
        raise ScheduleError(f"{name}: not UTF-8 text (byte {e.start}); expected an STG task graph") from None
    lines = [
        (i, ln.split())
        for i, ln in enumerate(text.splitlines(), 1)
        if ln.strip() and not ln.lstrip().startswith("#")
    ]
    if not lines:
        raise ScheduleError(f"{name}: empty file, expected the number of tasks on line 1")
    lineno, head = lines[0]
    if len(head) != 1 or not head[0].isdigit():
        raise ScheduleError(
            f"{name}:{lineno}: expected the number of tasks, got '{' '.join(head)}'"
        )
    n = int(head[0])
    body = lines[1:]
    if len(body) < n + 2:
        last = body[-1][0] if body else lineno
        raise ScheduleError(
            f"{name}:{last}: expected {n + 2} task lines (n + 2 dummies), got {len(body)}"
        )
    if len(body) > n + 2:
        raise ScheduleError(f"{name}:{body[n + 2][0]}: unexpected line after the last task {n + 1}")

    procs = {f"P{k}": Processor(f"P{k}") for k in range(1, processors + 1)}
    tasks: dict[str, Task] = {}
    edges: dict[tuple[str, str], float] = {}
    for expect, (lineno, fields) in enumerate(body):
        where = f"{name}:{lineno}"
        if not all(f.isdigit() for f in fields):
            bad = next(f for f in fields if not f.isdigit())
            raise ScheduleError(f"{where}: expected non-negative integers, got '{bad}'")
        if len(fields) < 3:
            raise ScheduleError(
                f"{where}: expected 'id time n_pred pred...', got {len(fields)} fields"
            )
        tid, cost, npred = (int(f) for f in fields[:3])
        if tid != expect:
            raise ScheduleError(f"{where}: expected task id {expect}, got {tid}")
        preds = [int(f) for f in fields[3:]]
        if len(preds) != npred:
            raise ScheduleError(f"{where}: expected {npred} predecessor ids, got {len(preds)}")
        for u in preds:
            if u > n + 1:
                raise ScheduleError(f"{where}: predecessor {u} is not a task (ids are 0..{n + 1})")
            if (f"t{u}", f"t{tid}") in edges:
                raise ScheduleError(f"{where}: predecessor {u} listed twice")
            edges[f"t{u}", f"t{tid}"] = 0.0
        tasks[f"t{tid}"] = Task(f"t{tid}", {p: float(cost) for p in procs})
    return _checked(TaskGraph(tasks, procs, edges, {}), name)
