"""Cost per request ("tco"), SLAs and arrival rates, on graphs solved by hand."""

import random

import pytest

from agentc.scheduler.baselines import all_baselines
from agentc.scheduler.cost import annotate, cost_lower_bound, request_cost, within_limits
from agentc.scheduler.cpop import cpop
from agentc.scheduler.explain import SlaError
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


def placed(sched):
    return {t: s.processor for t, s in sched.assignment.items()}


def two_speed_chain(price: float = 1.0) -> TaskGraph:
    """a -> b; each runs in 10 on `slow` (price/s) or 2 on `fast` (8 x price/s)."""
    procs = {
        "slow": Processor("slow", cost_per_s=price),
        "fast": Processor("fast", cost_per_s=8 * price),
    }
    tasks = {t: Task(t, {"slow": 10, "fast": 2}) for t in "ab"}
    return TaskGraph(tasks, procs, {("a", "b"): 0})


# SLA -> (placement, cost at price 1): all slow 10 + 10; one on each 10 + 8 x 2;
# all fast 8 x (2 + 2).
HAND = {
    30: ({"a": "slow", "b": "slow"}, 20.0),
    12: ({"a": "slow", "b": "fast"}, 26.0),
    4: ({"a": "fast", "b": "fast"}, 32.0),
}


@pytest.mark.parametrize("sla", sorted(HAND))
@pytest.mark.parametrize("price", [1.0, 0.0013])  # whole numbers, and a scaled money unit
def test_tco_slow_when_loose_fast_when_tight(sla, price):
    tg = two_speed_chain(price)
    sched = solve(tg, objective="tco", sla=sla, time_limit_s=2)
    want, cost = HAND[sla]
    if sla == 12:  # either task may be the slow one: same cost, same makespan
        assert sorted(placed(sched).values()) == ["fast", "slow"]
    else:
        assert placed(sched) == want
    assert sched.cost == pytest.approx(cost * price, rel=1e-12)
    assert sched.makespan <= sla
    assert sched.objective == "tco"
    assert sched.status == "optimal"
    assert sched.lower_bound == pytest.approx(sched.cost)
    assert sched.gap == pytest.approx(0.0, abs=1e-9)
    assert sched.sla_met is True
    check_schedule(tg, sched)


def test_latency_reports_cost_busy_time_utilisation_and_sla():
    tg = two_speed_chain()
    sched = solve(tg, sla=3, time_limit_s=2)
    assert placed(sched) == {"a": "fast", "b": "fast"}
    assert sched.objective == "latency"
    assert sched.cost == 32.0  # the same cost function as tco
    assert sched.busy_time == {"slow": 0.0, "fast": 4.0}
    assert sched.utilisation == {"slow": 0.0, "fast": 1.0}  # busy / makespan
    assert sched.sla_met is False  # reported, not enforced, for latency
    heft_sched = solve(tg, "heft", sla=4)
    assert heft_sched.cost == 32.0 and heft_sched.sla_met is True
    out = sched.to_json()
    assert out["cost"] == 32.0 and out["utilisation"]["fast"] == 1.0 and out["sla"] == 3


def three_devices(p3_reserve: float) -> TaskGraph:
    """a and b (10 each) only run on p1/p2 and must run side by side to meet SLA 11; the
    tiny c (1) runs anywhere, cheapest per second on p3."""
    procs = {
        "p1": Processor("p1", cost_per_s=1, reserve_cost=2),
        "p2": Processor("p2", cost_per_s=1, reserve_cost=2),
        "p3": Processor("p3", cost_per_s=0.5, reserve_cost=p3_reserve),
    }
    tasks = {
        "a": Task("a", {"p1": 10, "p2": 10}),
        "b": Task("b", {"p1": 10, "p2": 10}),
        "c": Task("c", {"p1": 1, "p2": 1, "p3": 1}),
    }
    return TaskGraph(tasks, procs)


def test_reservation_keeps_a_tiny_task_off_a_third_device():
    # No reservation on p3: c goes there, 10 + 10 + 0.5 + reserves 2 + 2.
    free = solve(three_devices(0.0), objective="tco", sla=11, time_limit_s=2)
    assert placed(free)["c"] == "p3"
    assert free.cost == 24.5
    # Reserving p3 costs 2 per request: c runs after a or b instead, 10 + 10 + 1 + 2 + 2
    # (p3 would cost 20.5 + 6 = 26.5).
    tg = three_devices(2.0)
    sched = solve(tg, objective="tco", sla=11, time_limit_s=2)
    assert placed(sched)["c"] in ("p1", "p2")
    assert "p3" not in placed(sched).values()
    assert sched.cost == 25.0
    assert sched.status == "optimal"
    assert sched.makespan == 11
    check_schedule(tg, sched)


def independent_four() -> TaskGraph:
    """Three independent tasks, 3 each on cpu (1/s) or 2 each on gpu (2/s)."""
    procs = {"cpu": Processor("cpu", cost_per_s=1), "gpu": Processor("gpu", cost_per_s=2)}
    tasks = {t: Task(t, {"cpu": 3, "gpu": 2}) for t in "abc"}
    return TaskGraph(tasks, procs)


def test_throughput_low_rate_one_cheap_processor():
    # 0.1 requests/s: cpu alone is busy 9 s a request, utilisation 0.9; it costs 1 / 0.1.
    tg = independent_four()
    sched = solve(tg, objective="tco", sla=20, arrival_rate=0.1, time_limit_s=2)
    assert set(placed(sched).values()) == {"cpu"}
    assert sched.cost == pytest.approx(10.0)
    assert sched.utilisation == pytest.approx({"cpu": 0.9, "gpu": 0.0})
    assert sched.arrival_rate == 0.1
    assert sched.status == "optimal"


def test_throughput_high_rate_splits_the_work():
    # 0.25 requests/s: cpu alone 9 x 0.25 and gpu alone 6 x 0.25 exceed 1; one task on
    # cpu (3 x 0.25) and two on gpu (4 x 0.25) fit; both are reserved: (1 + 2) / 0.25.
    tg = independent_four()
    sched = solve(tg, objective="tco", sla=20, arrival_rate=0.25, time_limit_s=2)
    on = list(placed(sched).values())
    assert sorted(on) == ["cpu", "gpu", "gpu"]
    assert sched.cost == pytest.approx(12.0)
    assert sched.busy_time == {"cpu": 3.0, "gpu": 4.0}
    assert sched.utilisation == pytest.approx({"cpu": 0.75, "gpu": 1.0})
    assert all(u <= 1 + 1e-9 for u in sched.utilisation.values())
    assert sched.status == "optimal"
    check_schedule(tg, sched)


def test_throughput_out_of_reach_says_so():
    with pytest.raises(SlaError, match="utilisation <= 1 at 1 requests/s"):
        solve(independent_four(), objective="tco", sla=20, arrival_rate=1.0, time_limit_s=2)


def test_tco_needs_an_sla_and_rates_must_be_positive():
    tg = two_speed_chain()
    with pytest.raises(ScheduleError, match="objective 'tco' needs an SLA"):
        solve(tg, objective="tco")
    with pytest.raises(ScheduleError, match="arrival_rate applies only to objective 'tco'"):
        solve(tg, arrival_rate=1.0)
    with pytest.raises(ScheduleError, match="sla must be a finite number > 0"):
        solve(tg, objective="tco", sla=0)
    with pytest.raises(ScheduleError, match="unknown objective 'money'"):
        solve(tg, objective="money")


def test_heuristic_pools_return_their_cheapest_member_within_the_sla():
    tg = two_speed_chain()
    sched = solve(tg, "single", objective="tco", sla=30)
    assert sched.algorithm == "single:slow" and sched.cost == 20.0
    assert solve(tg, "single", objective="tco", sla=5).algorithm == "single:fast"


def random_dag(seed: int) -> TaskGraph:
    """Layered DAG over a cheap slow CPU (host memory), a mid GPU and a fast dear GPU."""
    rng = random.Random(seed)
    procs = {
        "cpu": Processor("cpu", capacity=2, cost_per_s=0.2, memory_space="host"),
        "gpu0": Processor("gpu0", cost_per_s=1.0, reserve_cost=rng.choice([0.0, 1.5])),
        "gpu1": Processor("gpu1", cost_per_s=3.0, reserve_cost=rng.choice([0.0, 4.0])),
    }
    n = rng.randint(8, 12)
    tasks = {}
    for i in range(n):
        base = rng.randint(2, 9)
        tasks[f"t{i}"] = Task(f"t{i}", {"cpu": 4 * base, "gpu0": 2 * base, "gpu1": base})
    edges = {}
    for v in range(1, n):
        for u in rng.sample(range(v), k=min(v, rng.randint(1, 2))):
            edges[f"t{u}", f"t{v}"] = float(rng.randint(0, 4))
    links = {
        ("cpu", "gpu0"): Link(0, 1),
        ("cpu", "gpu1"): Link(0, 1),
        ("gpu0", "gpu1"): Link(0, 2),
    }
    return TaskGraph(tasks, procs, edges, links)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("rate, slack", [(None, 1.5), (0.02, 2.0)])
def test_cpsat_tco_never_costs_more_than_a_baseline_meeting_the_sla(seed, rate, slack):
    # At 0.02 requests/s the dear GPU alone is over-utilised on some seeds, so the
    # answer mixes reserved devices; baselines meet the limits on every seed here.
    tg = random_dag(seed)
    fast = heft(tg)
    sla = slack * fast.makespan
    others = all_baselines(tg) + [fast, peft(tg), cpop(tg)]
    for s in others:
        annotate(tg, s, rate, sla)
    meeting = [s for s in others if within_limits(s, sla, rate)]
    assert meeting
    sched = solve(tg, objective="tco", sla=sla, arrival_rate=rate, time_limit_s=1)
    check_schedule(tg, sched)
    assert sched.makespan <= sla + 1e-9
    assert within_limits(sched, sla, rate)
    assert sched.cost == pytest.approx(request_cost(tg, sched, rate), rel=1e-12)
    assert sched.cost <= min(s.cost for s in meeting) + 1e-9
    assert 0 <= sched.lower_bound <= sched.cost + 1e-9
    assert cost_lower_bound(tg, sla, rate) <= sched.cost + 1e-9
