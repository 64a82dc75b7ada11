"""`explain_sla`: best latency, its proof, the critical path and what binds it."""

import pytest

from agentc.scheduler.explain import SlaError, Step, critical_path, explain_sla
from agentc.scheduler.solve import solve
from agentc.scheduler.taskgraph import Link, Processor, ScheduleError, Task, TaskGraph


def _explain(tg, sla):
    """explain_sla with the best latency schedule CP-SAT finds in 2 s."""
    return explain_sla(tg, sla, solve(tg, "cpsat", time_limit_s=2))


def link_bound() -> TaskGraph:
    """a runs only on cpu, b only on gpu, and 100 units cross a link of bandwidth 10."""
    procs = {"cpu": Processor("cpu"), "gpu": Processor("gpu")}
    tasks = {"a": Task("a", {"cpu": 1}), "b": Task("b", {"gpu": 1})}
    return TaskGraph(tasks, procs, {("a", "b"): 100}, {("cpu", "gpu"): Link(0, 10)})


def memory_bound(shared: bool = False) -> TaskGraph:
    """The gpu runs each task in 1 (the cpu in 10) but holds 10 bytes. Alone: b's 20
    bytes never fit. Shared: a and b need 8 each, so only one of them fits there."""
    procs = {"gpu": Processor("gpu", memory_bytes=10), "cpu": Processor("cpu")}
    costs = {"gpu": 1, "cpu": 10}
    if shared:
        tasks = {
            "a": Task("a", dict(costs), {"wa": 8}),
            "b": Task("b", dict(costs), {"wb": 8}),
        }
    else:
        tasks = {"a": Task("a", dict(costs)), "b": Task("b", dict(costs), {"wb": 20})}
    return TaskGraph(tasks, procs, {("a", "b"): 0})


def compute_bound() -> TaskGraph:
    """A chain of three on one processor (4 + 5 + 6), a slower spare that never helps."""
    procs = {"p": Processor("p"), "q": Processor("q")}
    tasks = {t: Task(t, {"p": c, "q": 3 * c}) for t, c in (("x", 4), ("y", 5), ("z", 6))}
    return TaskGraph(tasks, procs, {("x", "y"): 0, ("y", "z"): 0})


def test_link_dominated_path():
    report = _explain(link_bound(), 5)
    assert report.best_latency == 12
    assert report.lower_bound == 12  # CP-SAT proves it; the solver-free bound says 2
    assert report.proven_unreachable and not report.reachable
    assert report.path == [
        Step("a", "cpu", 0, 1, fastest=1),
        Step("a -> b", "cpu -> gpu", 1, 11, "transfer", ("cpu", "gpu")),
        Step("b", "gpu", 11, 12, fastest=1),
    ]
    assert report.binding == "link"
    assert (report.compute_time, report.memory_time, report.link_time) == (2, 0, 10)
    text = str(report).splitlines()
    assert (
        text[0] == "SLA 5 is unreachable: the best achievable latency is 12 (proven lower bound 12)"
    )
    assert text[1].startswith("binding resource: link")
    assert "a -> b over cpu -> gpu: 10" in text[1]


def test_memory_keeps_a_task_off_its_fastest_processor():
    report = _explain(memory_bound(), 5)
    assert report.best_latency == 11  # a on gpu (1), b on cpu (10)
    assert report.binding == "memory"
    (block,) = report.blocked
    assert (block.task, block.fastest, block.runs_on) == ("b", "gpu", "cpu")
    assert (block.need, block.memory_bytes, block.lost) == (20, 10, 9)
    assert (report.compute_time, report.memory_time, report.link_time) == (2, 9, 0)
    assert "needs 20 bytes on its fastest processor gpu, which holds 10" in str(report)


def test_memory_shared_with_weights_already_there():
    report = _explain(memory_bound(shared=True), 5)
    assert report.best_latency == 11
    assert report.binding == "memory"
    (block,) = report.blocked
    assert block.runs_on == "cpu" and block.need == 16 and block.memory_bytes == 10


def test_compute_bound_chain():
    tg = compute_bound()
    report = _explain(tg, 10)
    assert report.best_latency == 15 and report.lower_bound == 15
    assert report.binding == "compute"
    assert [(s.task, s.processor, s.start, s.end) for s in report.path] == [
        ("x", "p", 0, 4),
        ("y", "p", 4, 9),
        ("z", "p", 9, 15),
    ]
    assert report.compute_time == 15 and report.link_time == 0 and report.memory_time == 0
    assert "take 15 even on their fastest processors" in str(report)


def test_path_follows_a_busy_processor():
    # Two independent tasks forced onto one processor: the second waits for the first.
    procs = {"p": Processor("p")}
    tg = TaskGraph({"u": Task("u", {"p": 3}), "v": Task("v", {"p": 2})}, procs)
    sched = solve(tg, "heft")
    path = critical_path(tg, sched)
    assert [s.kind for s in path] == ["run", "run"]
    assert path[0].start == 0 and path[-1].end == sched.makespan == 5


def test_reachable_sla_and_a_given_schedule():
    tg = compute_bound()
    sched = solve(tg, "heft")
    report = explain_sla(tg, sla=20, schedule=sched)
    assert report.reachable and report.schedule is sched
    assert str(report).startswith("SLA 20 is met: the best latency found is 15")


def test_unreachable_sla_raises_with_the_explanation():
    tg = link_bound()
    with pytest.raises(ScheduleError) as info:
        solve(tg, objective="tco", sla=5, time_limit_s=2)
    e = info.value
    assert isinstance(e, SlaError)
    assert "SLA 5 is unreachable: the best achievable latency is 12" in str(e)
    assert str(e.report).splitlines()[0] in str(e)
    assert e.report.binding == "link"


def test_unreachable_sla_below_the_solver_free_bound():
    # compute_bound's critical path is 15 with free transfers: no solve needed to refute 14
    with pytest.raises(SlaError, match="best achievable latency is 15 .proven lower bound 15."):
        solve(compute_bound(), objective="tco", sla=14, time_limit_s=2)
