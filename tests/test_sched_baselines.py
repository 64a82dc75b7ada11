"""Baselines, solver-free bounds and chain coarsening on hand-solved graphs."""

import pytest

from agentc.scheduler.baselines import (
    all_baselines,
    fastest_first,
    priority_greedy,
    random_feasible,
    single_processor,
    single_processor_all,
)
from agentc.scheduler.bounds import (
    critical_path_bound,
    load_balance_bound,
    lower_bound,
    work_bound,
)
from agentc.scheduler.coarsen import coarsen_chains, expand
from agentc.scheduler.cpsat import solve_cpsat
from agentc.scheduler.pool import pool_identical
from agentc.scheduler.solve import solve
from agentc.scheduler.taskgraph import (
    Link,
    Processor,
    Schedule,
    Slot,
    Task,
    TaskGraph,
    check_schedule,
)


def fork_join():
    # s -> {a, b} -> j. 'npu' cannot run a. Every transfer costs 3 (edge volume 3, bw 1).
    procs = {p: Processor(p) for p in ("gpu", "cpu", "npu")}
    return TaskGraph(
        tasks={
            "s": Task("s", {"gpu": 1, "cpu": 2, "npu": 1}),
            "a": Task("a", {"gpu": 4, "cpu": 6}),
            "b": Task("b", {"gpu": 4, "cpu": 6, "npu": 2}),
            "j": Task("j", {"gpu": 1, "cpu": 2, "npu": 1}),
        },
        processors=procs,
        edges={("s", "a"): 3, ("s", "b"): 3, ("a", "j"): 3, ("b", "j"): 3},
        links={(p, q): Link(0, 1) for p in procs for q in procs if p < q},
    )


def test_single_processor_runs_everything_there():
    tg = fork_join()
    assert single_processor(tg, "gpu").makespan == 1 + 4 + 4 + 1
    assert single_processor(tg, "cpu").makespan == 2 + 6 + 6 + 2
    assert single_processor(tg, "npu") is None  # cannot run a
    assert [s.algorithm for s in single_processor_all(tg)] == ["single:gpu", "single:cpu"]


def test_priority_greedy_takes_first_supporting_processor():
    tg = fork_join()
    sched = priority_greedy(tg, ["npu", "cpu", "gpu"])
    check_schedule(tg, sched)
    where = {t: s.processor for t, s in sched.assignment.items()}
    assert where == {"s": "npu", "a": "cpu", "b": "npu", "j": "npu"}
    # s 0-1 npu; a on cpu from 1+3=4 to 10; b npu 1-3; j waits for a: 10+3 = 13, ends 14
    assert sched.makespan == 14
    assert fastest_first(tg)[0] == "gpu"


def test_random_feasible_is_seeded_and_feasible():
    tg = fork_join()
    for seed in range(10):
        sched = random_feasible(tg, seed)
        check_schedule(tg, sched)
        assert sched.assignment["a"].processor != "npu"
        assert sched.makespan == random_feasible(tg, seed).makespan


def test_solve_never_worse_than_best_baseline():
    tg = fork_join()
    best = min(s.makespan for s in all_baselines(tg))
    for algo in ("cpsat", "baseline"):
        sched = solve(tg, algo, time_limit_s=5)
        check_schedule(tg, sched)
        assert sched.makespan <= best
    # By hand: with s, a, j on the gpu, b costs 10 anywhere (gpu: 1+4+4+1; npu: its
    # input arrives at 4, it ends at 6 and its output at 9). With s on the npu (0-1), b
    # follows there (1-3), a runs on the gpu 4-8 and j on the gpu 8-9 (b's output arrives
    # at 6): 9. a must take >= 4 and start >= 1 (s on the gpu) or >= 4 (elsewhere), so no
    # schedule ends before 9.
    assert solve(tg, "cpsat", time_limit_s=5).makespan == 9


def test_bounds():
    tg = fork_join()
    assert critical_path_bound(tg) == 1 + 4 + 1  # s, a (gpu 4), j at fastest
    assert work_bound(tg) == pytest.approx((1 + 4 + 2 + 1) / 3)
    assert lower_bound(tg) == 6


def chain_graph():
    # a -> b -> c -> {d, e} -> f, plus x -> y where y cannot run on p2
    procs = {"p1": Processor("p1"), "p2": Processor("p2")}
    both = {"p1": 1, "p2": 2}
    tasks = {t: Task(t, dict(both)) for t in "abcdef"}
    tasks["x"] = Task("x", dict(both))
    tasks["y"] = Task("y", {"p1": 3})
    edges = {(u, v): 0 for u, v in ("ab", "bc", "cd", "ce", "df", "ef", "xy")}
    return TaskGraph(tasks, procs, edges)


def test_coarsen_merges_only_chains_with_the_same_processors():
    tg = chain_graph()
    c = coarsen_chains(tg)
    assert c.members == {
        "a": ["a", "b", "c"],
        "d": ["d"],
        "e": ["e"],
        "f": ["f"],
        "x": ["x"],
        "y": ["y"],
    }
    assert c.coarse.tasks["a"].cost == {"p1": 3, "p2": 6}
    assert set(c.coarse.edges) == {("a", "d"), ("a", "e"), ("d", "f"), ("e", "f"), ("x", "y")}


def test_expand_runs_members_back_to_back():
    tg = chain_graph()
    c = coarsen_chains(tg)
    coarse = Schedule(
        {
            "a": Slot("p1", 0, 3),
            "d": Slot("p1", 3, 4),
            "e": Slot("p2", 3, 5),
            "f": Slot("p1", 5, 6),
            "x": Slot("p2", 0, 2),
            "y": Slot("p1", 6, 9),
        },
        makespan=9,
        algorithm="test",
    )
    fine = expand(tg, c, coarse)
    check_schedule(tg, fine)
    assert [(fine.assignment[t].start, fine.assignment[t].end) for t in "abc"] == [
        (0, 1),
        (1, 2),
        (2, 3),
    ]


def test_solve_with_coarsening_is_feasible_and_optimal():
    tg = chain_graph()
    # By hand: y takes 3 on p1; of the other 7 tasks, k run on p2 (2 each) and 7 - k on
    # p1 (1 each), so the makespan is at least min over k of max(10 - k, 2k) = 7. The
    # load-balance LP allows k = 10/3, i.e. 20/3, rounded up to 7 as all times are integers
    # (the critical path a b c d f and the work bound give only 5).
    assert critical_path_bound(tg) == work_bound(tg) == 5
    assert load_balance_bound(tg) == pytest.approx(20 / 3, abs=1e-5)
    assert lower_bound(tg) == 7
    sched = solve(tg, "cpsat", time_limit_s=5, coarsen=True)
    check_schedule(tg, sched)
    assert (sched.makespan, sched.status, sched.lower_bound) == (7, "optimal", 7)


def test_load_balance_bound():
    # Four tasks of 4 on a fast processor or 12 on a slow one. Split fractionally, the
    # fast one does x of the 4 tasks' worth and the slow one the rest: 4x = 12(4 - x)
    # gives x = 3, makespan 12. Work bound: 16 / 2 = 8.
    tg = TaskGraph(
        tasks={t: Task(t, {"fast": 4, "slow": 12}) for t in "abcd"},
        processors={"fast": Processor("fast"), "slow": Processor("slow")},
    )
    assert work_bound(tg) == 8
    assert load_balance_bound(tg) == pytest.approx(12, abs=1e-5)
    assert lower_bound(tg) == 12
    # and 12 is achievable: three on fast, one on slow
    assert solve(tg, "cpsat", time_limit_s=5).status == "optimal"


def test_identical_processors_are_pooled_and_unpooled():
    # three identical processors (one of capacity 2) and a distinct one; six tasks of 3
    # that only the identical ones run well, no data on edges: 4 lanes, so 6 tasks take
    # two rounds: 6.
    procs = {
        "a": Processor("a"),
        "b": Processor("b", capacity=2),
        "c": Processor("c"),
        "slow": Processor("slow"),
    }
    tasks = {f"t{i}": Task(f"t{i}", {"a": 3, "b": 3, "c": 3, "slow": 30}) for i in range(6)}
    tg = TaskGraph(tasks, procs, {("t0", "t5"): 0})
    pooling = pool_identical(tg)
    assert pooling.members == {"a": ["a", "b", "c"], "slow": ["slow"]}
    assert pooling.pooled.processors["a"].capacity == 4
    sched = solve_cpsat(tg, time_limit_s=5)
    check_schedule(tg, sched)
    assert (sched.makespan, sched.status) == (6, "optimal")
    assert {s.processor for s in sched.assignment.values()} <= {"a", "b", "c"}
    # data on an edge, or a memory limit, makes processors distinguishable
    assert pool_identical(TaskGraph(tasks, procs, {("t0", "t5"): 1})) is None
    limited = {**procs, "c": Processor("c", memory_bytes=100)}
    assert pool_identical(TaskGraph(tasks, limited)).members == {
        "a": ["a", "b"],
        "c": ["c"],
        "slow": ["slow"],
    }


def test_critical_path_bound_pays_unavoidable_transfers():
    # host-only -> gpu-only -> host-only: both edges cross memories whatever the placement,
    # each paying latency 1 + 8 units / bandwidth 4 = 3; the middle task may also run on
    # the host (slowly), so its edges are free there and the bound must not charge them.
    procs = {"host": Processor("host"), "gpu": Processor("gpu")}
    link = {("host", "gpu"): Link(latency=1, bandwidth=4)}
    edges = {("a", "b"): 8, ("b", "c"): 8}
    pinned = TaskGraph({"a": Task("a", {"host": 1}), "b": Task("b", {"gpu": 2}), "c": Task("c", {"host": 1})},
                       procs, edges, link)
    assert critical_path_bound(pinned) == 1 + 3 + 2 + 3 + 1
    assert solve(pinned, "cpsat", time_limit_s=5).makespan == 10
    free = TaskGraph({"a": Task("a", {"host": 1}), "b": Task("b", {"gpu": 2, "host": 20}), "c": Task("c", {"host": 1})},
                     procs, edges, link)
    assert critical_path_bound(free) == 1 + 2 + 1


def test_empty_edges_pay_latency_only_where_a_link_exists():
    # u runs on h; v on a or b; the edge carries nothing. Only h-a has a link (latency 5),
    # and an empty transfer needs no link, so v on b starts at once: makespan 2, bound 2.
    procs = {p: Processor(p) for p in ("h", "a", "b")}
    tg = TaskGraph({"u": Task("u", {"h": 1}), "v": Task("v", {"a": 1, "b": 1})}, procs, {("u", "v"): 0},
                   {("h", "a"): Link(latency=5, bandwidth=1)})
    assert critical_path_bound(tg) == 2
    assert solve(tg, "cpsat", time_limit_s=5).makespan == 2


def test_pooling_keeps_link_latency_on_empty_edges():
    # two identical processors joined by a link of latency 5; a -> c and b -> c carry no
    # data but a transfer still pays the latency, so pooling (which drops links) must not apply.
    procs = {"p": Processor("p"), "q": Processor("q")}
    tg = TaskGraph({t: Task(t, {"p": 1, "q": 1}) for t in "abc"}, procs, {("a", "c"): 0, ("b", "c"): 0},
                   {("p", "q"): Link(latency=5, bandwidth=1)})
    assert pool_identical(tg) is None
    sched = solve(tg, "cpsat", time_limit_s=5)
    assert sched.makespan == 3  # all three on one processor beats paying the latency
