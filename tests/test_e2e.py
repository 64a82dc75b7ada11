"""End to end: compiled, placed, multi-device runs against a PyTorch/NumPy reference run
of the same agent before any decomposition."""

import numpy as np
import pytest
from conftest import EXAMPLES, VULKAN

import agentc
from agentc.frontend.reference import run_reference
from agentc.frontend.trace import trace_file

QUERIES = ["What is 12 * 7?", "Where does the Rhine flow?"]


@pytest.mark.parametrize("devices", [("cpu",), pytest.param(("vulkan",), marks=VULKAN),
                                     pytest.param(("cpu", "vulkan"), marks=VULKAN)])
def test_rag_matches_reference(builds, devices):
    placement = builds("rag_agent.py", devices)
    graph = trace_file(EXAMPLES / "rag_agent.py")
    used = {op.device for op in placement.ops if op.kind == "call"}
    assert used <= set(devices)
    with agentc.load(placement.build_dir) as s:
        for q in QUERIES:
            got = s.run({"query": q}, fetch=["embed_query/pool", "retrieve/top3"])
            ref = run_reference(graph, {"query": q})
            assert got["outputs"] == ref["outputs"]
            emb = got["values"]["embed_query/pool"]
            assert np.abs(emb - ref["values"]["embed_query"]).max() <= 1e-4
            assert np.array_equal(got["values"]["retrieve/top3"], ref["values"]["retrieve"])
    # Both branch sides were exercised: the calculator ran for the first query only.
    assert "12 * 7 = 84" in ref["outputs"][0] or "12 * 7 = 84" in run_reference(graph, {"query": QUERIES[0]})["outputs"][0]


@VULKAN
def test_fanout_overlaps_devices(builds, defaults_catalog):
    placement = builds("fanout_agent.py", ("cpu", "vulkan"), catalog=defaults_catalog)
    assert {op.device for op in placement.ops if op.kind == "call"} == {"cpu", "vulkan"}
    graph = trace_file(EXAMPLES / "fanout_agent.py")
    with agentc.load(placement.build_dir) as s:
        out = s.run({"query": "What is a compiler?"})
        assert out["outputs"] == run_reference(graph, {"query": "What is a compiler?"})["outputs"]
        assert s.trace.overlaps("cpu", "vulkan", request=1)


@VULKAN
@pytest.mark.parametrize("graph, slowed", [("fanout_agent.py", "cpu"), ("fanout_agent.py", "vulkan"),
                                           ("rag_agent.py", "cpu")])
def test_placement_follows_cost(builds, defaults_catalog, graph, slowed):
    """Declaring a device 10x slower moves operators off it, whichever device it is."""
    def count(placement):
        return sum(op.device == slowed for op in placement.ops if op.kind == "call")

    base = builds(graph, ("cpu", "vulkan"), catalog=defaults_catalog)
    slow = builds(graph, ("cpu", "vulkan"), catalog=defaults_catalog, slowdown=((slowed, 10.0),))
    assert 0 < count(base)
    assert count(slow) < count(base)


def test_concurrent_requests(builds):
    from concurrent.futures import ThreadPoolExecutor

    placement = builds("rag_agent.py", ("cpu",))
    graph = trace_file(EXAMPLES / "rag_agent.py")
    expected = {q: run_reference(graph, {"query": q})["outputs"] for q in QUERIES}
    with agentc.load(placement.build_dir) as s, ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda q: (q, s.run({"query": q})["outputs"]), QUERIES * 3))
    for q, out in results:
        assert out == expected[q]
