"""Bad inputs fail with one line that names the file and the line or field at fault."""

import json

import pytest

from agentc.scheduler.cpsat import solve_cpsat
from agentc.scheduler.formats import read_dag_json, read_stg
from agentc.scheduler.heft import heft
from agentc.scheduler.taskgraph import (
    Link,
    Processor,
    Schedule,
    ScheduleError,
    Slot,
    Task,
    TaskGraph,
    check_schedule,
)

GOOD = {
    "tasks": ["a", "b", "c"],
    "processors": ["P1", "P2"],
    "comp_cost": {"a": [1, 2], "b": [3, 4], "c": [5, 6]},
    "edges": [["a", "b", 7], ["b", "c", 8]],
}


def write_json(tmp_path, **changes):
    data = {**json.loads(json.dumps(GOOD)), **changes}
    path = tmp_path / "g.json"
    path.write_text(json.dumps(data, indent=1))
    return path


def error_of(fn, *args):
    with pytest.raises(ScheduleError) as info:
        fn(*args)
    msg = str(info.value)
    assert "\n" not in msg
    return msg


def test_good_json_reads(tmp_path):
    tg = read_dag_json(write_json(tmp_path))
    assert tg.tasks["b"].cost == {"P1": 3, "P2": 4}
    assert tg.comm_time("a", "b", "P1", "P2") == 7
    assert tg.comm_time("a", "b", "P2", "P2") == 0


@pytest.mark.parametrize(
    "changes, message",
    [
        (
            {"comp_cost": {"a": [1, 2], "b": [3], "c": [5, 6]}},
            "g.json: comp_cost.b: expected 2 costs (one per processor), got 1",
        ),
        (
            {"comp_cost": {"a": [1, 2], "b": [3, -4], "c": [5, 6]}},
            "g.json: comp_cost.b.P2: expected a finite number >= 0, got -4",
        ),
        (
            {"comp_cost": {"a": [1, 2], "b": {"P9": 3}, "c": [5, 6]}},
            "g.json: task 'b': unknown processor 'P9'",
        ),
        (
            {"comp_cost": {"a": [1, 2], "b": [3, 4]}},
            "g.json: comp_cost: missing costs for task 'c'",
        ),
        ({"edges": [["a", "b", 7], ["b", "x", 8]]}, 'g.json: edges[1]: unknown task "x"'),
        (
            {"edges": [["a", "b"]]},
            'g.json: edges[0]: expected [source, target, cost], got ["a", "b"]',
        ),
        (
            {"edges": [["a", "b", 1], ["b", "c", 1], ["c", "a", 1]]},
            "g.json: cycle: a -> b -> c -> a",
        ),
        ({"links": [["P1", "P2", 0, 0]]}, "g.json: link P1 -> P2: bandwidth must be > 0, got 0.0"),
        (
            {"links": [["P1", "P2", 0, -5]]},
            "g.json: link P1 -> P2: bandwidth must be > 0, got -5.0",
        ),
        ({"links": [["P1", "P3", 0, 1]]}, 'g.json: links[0]: unknown processor "P3"'),
        (
            {"processors": ["P1", {"name": "P2", "capacity": 0}]},
            "g.json: processors[1].capacity: expected an integer >= 1, got 0",
        ),
    ],
)
def test_json_errors(tmp_path, changes, message):
    assert error_of(read_dag_json, write_json(tmp_path, **changes)) == message


def test_missing_link_where_a_transfer_is_needed(tmp_path):
    path = write_json(
        tmp_path,
        processors=["P1", "P2", "P3"],
        comp_cost={"a": [1, None, None], "b": [None, 2, None], "c": [1, 1, 1]},
        links=[["P1", "P3", 0, 1], ["P2", "P3", 0, 1]],
    )
    assert error_of(read_dag_json, path) == (
        "g.json: edge a -> b needs a transfer P1 -> P2, but no link joins them"
    )


def test_missing_link_in_a_built_graph_fails_in_every_solver():
    tg = TaskGraph(
        tasks={"a": Task("a", {"P1": 1}), "b": Task("b", {"P2": 1})},
        processors={"P1": Processor("P1"), "P2": Processor("P2")},
        edges={("a", "b"): 5},
    )
    expected = "edge a -> b needs a transfer P1 -> P2, but no link joins them"
    assert error_of(heft, tg) == expected
    assert error_of(solve_cpsat, tg) == expected


def test_missing_link_is_avoided_when_possible():
    # b may also run on P1, so the missing P1-P2 link only rules P2 out.
    tg = TaskGraph(
        tasks={"a": Task("a", {"P1": 1}), "b": Task("b", {"P1": 5, "P2": 1})},
        processors={"P1": Processor("P1"), "P2": Processor("P2"), "P3": Processor("P3")},
        edges={("a", "b"): 5},
        links={("P1", "P3"): Link(0, 1)},
    )
    assert heft(tg).assignment["b"].processor == "P1"
    assert solve_cpsat(tg, time_limit_s=5).assignment["b"].processor == "P1"


def test_invalid_json_names_the_line(tmp_path):
    path = tmp_path / "g.json"
    path.write_text('{\n "tasks": ["a"],\n "processors": ["P1"]\n "edges": []\n}\n')
    assert error_of(read_dag_json, path) == "g.json:4: invalid JSON: Expecting ',' delimiter"


STG = """\
3
0 0 0
1 4 1 0
2 5 1 0
3 6 2 1 2
4 0 1 3
# comment
"""


def write_stg(tmp_path, text):
    path = tmp_path / "rand0000.stg"
    path.write_text(text)
    return path


def test_good_stg_reads(tmp_path):
    tg = read_stg(write_stg(tmp_path, STG), 2)
    assert set(tg.edges) == {("t0", "t1"), ("t0", "t2"), ("t1", "t3"), ("t2", "t3"), ("t3", "t4")}
    assert tg.tasks["t3"].cost == {"P1": 6, "P2": 6}
    assert heft(tg).makespan == 5 + 6  # t1 (4) and t2 (5) in parallel, then t3 (6)


@pytest.mark.parametrize(
    "old, new, message",
    [
        ("3 6 2 1 2", "3 6 3 1 2", "rand0000.stg:5: expected 3 predecessor ids, got 2"),
        ("2 5 1 0", "7 5 1 0", "rand0000.stg:4: expected task id 2, got 7"),
        ("2 5 1 0", "2 5.5 1 0", "rand0000.stg:4: expected non-negative integers, got '5.5'"),
        ("2 5 1 0", "2 5", "rand0000.stg:4: expected 'id time n_pred pred...', got 2 fields"),
        ("1 4 1 0", "1 4 1 9", "rand0000.stg:3: predecessor 9 is not a task (ids are 0..4)"),
        ("1 4 1 0", "1 4 1 3", "rand0000.stg: cycle: t3 -> t1 -> t3"),
        ("4 0 1 3\n", "", "rand0000.stg:5: expected 5 task lines (n + 2 dummies), got 4"),
        ("3\n", "three\n", "rand0000.stg:1: expected the number of tasks, got 'three'"),
    ],
)
def test_stg_errors(tmp_path, old, new, message):
    assert old in STG
    assert error_of(read_stg, write_stg(tmp_path, STG.replace(old, new, 1)), 2) == message


def test_stg_needs_a_processor(tmp_path):
    msg = error_of(read_stg, write_stg(tmp_path, STG), 0)
    assert msg == "rand0000.stg: the number of processors must be an integer >= 1, got 0"


def test_unreadable_file(tmp_path):
    msg = error_of(read_dag_json, tmp_path / "missing.json")
    assert msg.endswith("missing.json: cannot read: No such file or directory")


def test_check_schedule_rejects_broken_schedules():
    tg = TaskGraph(
        tasks={
            "a": Task("a", {"gpu": 2, "cpu": 4}, resident={"w": 6}),
            "b": Task("b", {"gpu": 2}, resident={"v": 6}),
        },
        processors={"gpu": Processor("gpu", memory_bytes=10), "cpu": Processor("cpu")},
        edges={("a", "b"): 0},
    )
    cases = [
        ({"a": Slot("cpu", 0, 4)}, "task 'b' is not scheduled"),
        ({"a": Slot("cpu", 0, 4), "b": Slot("cpu", 4, 6)}, "task 'b' cannot run on cpu"),
        ({"a": Slot("cpu", 0, 3), "b": Slot("gpu", 3, 5)}, "task 'a' on cpu needs 4, got 3"),
        (
            {"a": Slot("gpu", 0, 2), "b": Slot("gpu", 2, 4)},
            "processor gpu: resident weights need 12 bytes, it has 10",
        ),
        (
            {"a": Slot("cpu", 0, 4), "b": Slot("gpu", 3, 5)},
            "b starts at 3 before its input from a at 4.0",
        ),
    ]
    for assignment, message in cases:
        sched = Schedule(assignment, makespan=6, algorithm="test")
        assert error_of(check_schedule, tg, sched) == message
