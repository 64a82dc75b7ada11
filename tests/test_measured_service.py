"""`--measured-service`: each call's operators scaled to what the call takes when a stage
replica runs it (its share of the plan in a Session of its own)."""

import json

import pytest

from agentc.serving.measured import QUESTIONS, _scale, share_runs
from agentc.serving.stages import from_plan


def test_a_calls_operators_are_scaled_by_its_share_run_over_them():
    plan = {"ops": [{"name": "a/x", "start": 0.0, "end": 0.001}, {"name": "a/y", "start": 0.5, "end": 0.503},
                    {"name": "b", "start": 0.0, "end": 0.002}]}
    _scale(plan, {"a": (0.008, 0.004)})  # the share took 8 ms where its operators took 4
    assert [op["end"] - op["start"] for op in plan["ops"]] == pytest.approx([0.002, 0.006, 0.002])


def test_every_call_of_a_build_is_timed_as_a_share(builds):
    build = builds("rag_agent.py", ("cpu",)).build_dir
    graph = from_plan(json.loads((build / "plan.json").read_text()))
    runs = share_runs(build, QUESTIONS[0], runs=3)
    assert set(runs) == {c.node for c in graph.calls}
    for wall, ops in runs.values():
        assert 0 < ops <= wall
