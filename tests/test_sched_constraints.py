"""Memory, transfers, capacity and processor support, on graphs small enough to solve by
hand; every algorithm must respect them."""

import pytest

from agentc.scheduler.baselines import priority_greedy, random_feasible
from agentc.scheduler.cpop import cpop
from agentc.scheduler.cpsat import solve_cpsat
from agentc.scheduler.heft import heft
from agentc.scheduler.peft import peft
from agentc.scheduler.solve import solve
from agentc.scheduler.taskgraph import (
    Link,
    Processor,
    ScheduleError,
    Task,
    TaskGraph,
    check_schedule,
)

# Algorithms that find the hand-computed optimum on these small graphs. CPOP joins only
# the feasibility tests: it deliberately keeps the whole critical path on one processor.
ALGOS = {
    "heft": heft,
    "peft": peft,
    "cpsat": lambda tg: solve_cpsat(tg, time_limit_s=5),
    "solve": lambda tg: solve(tg, "cpsat", time_limit_s=5),
}
ALL = {**ALGOS, "cpop": cpop}


def run(name, tg):
    sched = ALL[name](tg)
    check_schedule(tg, sched)
    return sched


@pytest.mark.parametrize("algo", ALL)
def test_weights_too_big_never_placed_there(algo):
    # big's weights (12 bytes) exceed the gpu's 10 although it runs 5x faster there.
    tg = TaskGraph(
        tasks={
            "big": Task("big", {"gpu": 1, "cpu": 5}, resident={"w_big": 12}),
            "small": Task("small", {"gpu": 1, "cpu": 5}, resident={"w_small": 4}),
        },
        processors={"gpu": Processor("gpu", memory_bytes=10), "cpu": Processor("cpu")},
    )
    sched = run(algo, tg)
    assert sched.assignment["big"].processor == "cpu"
    assert sched.assignment["small"].processor == "gpu"
    assert sched.makespan == 5


@pytest.mark.parametrize("algo", ALL)
def test_memory_shared_by_two_tasks_counts_once_and_blocks_a_third(algo):
    # a -> b share group w (8 bytes): both fit on the 10-byte gpu; c's own 8 bytes then
    # do not, so c runs on the cpu (cost 3) in parallel: makespan max(1 + 1, 3) = 3.
    tg = TaskGraph(
        tasks={
            "a": Task("a", {"gpu": 1, "cpu": 10}, resident={"w": 8}),
            "b": Task("b", {"gpu": 1, "cpu": 10}, resident={"w": 8}),
            "c": Task("c", {"gpu": 1, "cpu": 3}, resident={"v": 8}),
        },
        processors={"gpu": Processor("gpu", memory_bytes=10), "cpu": Processor("cpu")},
        edges={("a", "b"): 0},
    )
    sched = run(algo, tg)
    assert [sched.assignment[t].processor for t in "abc"] == ["gpu", "gpu", "cpu"]
    assert sched.makespan == 3


def transfer_graph(volume):
    # prod runs only on the gpu (1); cons takes 5 on the gpu, 1 on the cpu; the link moves
    # 10 bytes per time unit.
    return TaskGraph(
        tasks={"prod": Task("prod", {"gpu": 1}), "cons": Task("cons", {"gpu": 5, "cpu": 1})},
        processors={"gpu": Processor("gpu"), "cpu": Processor("cpu")},
        edges={("prod", "cons"): volume},
        links={("gpu", "cpu"): Link(latency=0, bandwidth=10)},
    )


@pytest.mark.parametrize("algo", ALGOS)
def test_large_transfer_keeps_consumer_with_producer(algo):
    # moving 100 bytes costs 10: cpu finishes at 1 + 10 + 1 = 12, gpu at 1 + 5 = 6
    sched = run(algo, transfer_graph(100))
    assert sched.assignment["cons"].processor == "gpu"
    assert sched.makespan == 6


@pytest.mark.parametrize("algo", ALGOS)
def test_small_transfer_is_worth_it(algo):
    # moving 10 bytes costs 1: cpu finishes at 1 + 1 + 1 = 3 < 6
    sched = run(algo, transfer_graph(10))
    assert sched.assignment["cons"].processor == "cpu"
    assert sched.assignment["cons"].start == 2
    assert sched.makespan == 3


@pytest.mark.parametrize("algo", ALGOS)
def test_shared_memory_space_moves_data_for_free(algo):
    tg = transfer_graph(1000)
    tg.processors = {
        "gpu": Processor("gpu", memory_space="host"),
        "cpu": Processor("cpu", memory_space="host"),
    }
    sched = run(algo, tg)
    assert sched.assignment["cons"].processor == "cpu"
    assert sched.makespan == 2


@pytest.mark.parametrize("algo", ALL)
def test_capacity_runs_tasks_concurrently(algo):
    # four independent tasks of 2 on a pool of capacity 2: 4; the other processor is too
    # slow (9) to help.
    tg = TaskGraph(
        tasks={t: Task(t, {"pool": 2, "slow": 9}) for t in "abcd"},
        processors={"pool": Processor("pool", capacity=2), "slow": Processor("slow")},
    )
    sched = run(algo, tg)
    assert sched.makespan == 4
    assert all(s.processor == "pool" for s in sched.assignment.values())


@pytest.mark.parametrize("algo", ALGOS)
def test_unsupported_processor_is_skipped(algo):
    # x cannot run on the fast gpu at all
    tg = TaskGraph(
        tasks={"x": Task("x", {"cpu": 7}), "y": Task("y", {"gpu": 1, "cpu": 7})},
        processors={"gpu": Processor("gpu"), "cpu": Processor("cpu")},
        edges={("x", "y"): 0},
        links={("gpu", "cpu"): Link()},
    )
    sched = run(algo, tg)
    assert sched.assignment["x"].processor == "cpu"
    assert sched.assignment["y"].processor == "gpu"
    assert sched.makespan == 8


def test_fractional_times_are_exact_after_rounding():
    # a (0.3) -> b (0.7) and c (0.45) on two identical processors: optimum 1.0, which is
    # also the critical path, so it is proved despite the tick rounding.
    procs = {"p": Processor("p"), "q": Processor("q")}
    tg = TaskGraph(
        tasks={
            "a": Task("a", {"p": 0.3, "q": 0.3}),
            "b": Task("b", {"p": 0.7, "q": 0.7}),
            "c": Task("c", {"p": 0.45, "q": 0.45}),
        },
        processors=procs,
        edges={("a", "b"): 0.0},
    )
    sched = solve_cpsat(tg, time_limit_s=5)
    check_schedule(tg, sched)
    assert sched.makespan == pytest.approx(1.0)
    assert sched.status == "optimal"


def test_random_and_greedy_respect_memory():
    tg = TaskGraph(
        tasks={"big": Task("big", {"gpu": 1, "cpu": 5}, resident={"w": 12})},
        processors={"gpu": Processor("gpu", memory_bytes=10), "cpu": Processor("cpu")},
    )
    assert priority_greedy(tg, ["gpu", "cpu"]).assignment["big"].processor == "cpu"
    for seed in range(5):
        assert random_feasible(tg, seed).assignment["big"].processor == "cpu"


def test_weights_that_fit_nowhere_are_an_error():
    tg = TaskGraph(
        tasks={"big": Task("big", {"gpu": 1}, resident={"w": 12})},
        processors={"gpu": Processor("gpu", memory_bytes=10)},
    )
    for algo in ALL.values():
        with pytest.raises(ScheduleError, match=r"task 'big': its resident weights \(12 bytes\)"):
            algo(tg)


@pytest.mark.parametrize("algo", ALL)
def test_processors_sharing_hardware_run_one_task_at_a_time(algo):
    # a and b are independent, each 4 on either processor: in parallel on two processors
    # (makespan 4), but one after the other when the two compute on the same cores (8).
    def graph(shares):
        return TaskGraph(tasks={"a": Task("a", {"cpu": 4, "vk": 4}), "b": Task("b", {"cpu": 4, "vk": 4})},
                         processors={"cpu": Processor("cpu", shares=shares), "vk": Processor("vk", shares=shares)})

    assert run(algo, graph("")).makespan == 4
    assert run(algo, graph("this-machine")).makespan == 8


def test_a_schedule_overlapping_processors_that_share_hardware_is_refused():
    from agentc.scheduler.taskgraph import Schedule, Slot

    tg = TaskGraph(tasks={"a": Task("a", {"cpu": 4}), "b": Task("b", {"vk": 4})},
                   processors={"cpu": Processor("cpu", shares="m"), "vk": Processor("vk", shares="m")})
    both = Schedule({"a": Slot("cpu", 0, 4), "b": Slot("vk", 0, 4)}, 4, "hand")
    with pytest.raises(ScheduleError, match="more than 1 tasks at once"):
        check_schedule(tg, both)
