"""Scale guards: placement on clusters of 1,000 and 10,000 devices finishes in bounded time
and memory (identical devices pooled, agentc/placement/useful_devices.py), whether a cluster file
gives one entry with a count or thousands of named entries; a graph.py that never stops
adding nodes ends with an error."""

import pytest
from conftest import EXAMPLES
from test_models_real import needs_minilm, needs_smollm

import agentc
from agentc.bench.place_scale import counted_cluster, measure_place, named_cluster
from agentc.placement.cluster_file import load_cluster
from agentc.placement.useful_devices import chain_cover


@pytest.mark.parametrize("n", [1000, 10000])
@pytest.mark.parametrize("layout", [counted_cluster, named_cluster])
def test_fanout_placement_on_thousands_of_devices(tmp_path, n, layout):
    got = measure_place(EXAMPLES / "fanout_agent.py", layout(tmp_path / "c.yaml", n))
    assert got["rc"] == 0
    assert got["s"] < 60 and got["rss_mb"] < 2048, got
    used = {op["device"] for op in got["placement"]["ops"] if op["kind"] == "call"}
    assert used and got["placement"]["meets_sla"]
    assert len(got["placement"]["utilisation"]) <= 2 * 8 + 1  # each class listed up to its use


def test_memory_does_not_grow_with_identical_devices(tmp_path):
    small = measure_place(EXAMPLES / "fanout_agent.py", counted_cluster(tmp_path / "a.yaml", 100))
    large = measure_place(EXAMPLES / "fanout_agent.py", counted_cluster(tmp_path / "b.yaml", 100_000))
    assert large["rss_mb"] < small["rss_mb"] + 64, (small, large)


def test_a_pooled_cluster_lists_what_a_request_can_use(tmp_path):
    """The fan-out asks six LLMs at once: up to seven T4s (six in parallel, one for the
    summary's weights) are listed of 5,000; the same placement problem as a cluster of 7."""
    cluster = load_cluster(counted_cluster(tmp_path / "c.yaml", 10_000))
    assert cluster.size == 10_000 and len(cluster.groups) == 2
    p = agentc.place(str(EXAMPLES / "fanout_agent.py"), cluster, objective="latency", time_limit_s=5)
    listed = [d for d in p.cluster.devices if d.startswith("nvidia-t4")]
    assert 6 <= len(listed) <= 8


def test_chain_cover_bounds_independent_operators():
    from agentc.ir.plan import PlanOp

    def op(name, inputs):
        return PlanOp(name, "call", inputs, [name], ["tensor<1xf32>"])

    # a -> b -> d, a -> c -> d, e alone: at most 3 at once (b, c, e)
    ops = [op("a", []), op("b", ["a"]), op("c", ["a"]), op("d", ["b", "c"]), op("e", [])]
    assert chain_cover(ops, {o.name for o in ops}) == 3
    assert chain_cover(ops, {"a", "b", "d"}) == 1


def test_tracing_stops_past_the_node_limit(tmp_path):
    g = tmp_path / "endless.py"
    g.write_text("import agentc\n\n@agentc.agent\ndef a(q):\n    while True:\n        q = agentc.format('{0}.', q)\n")
    with pytest.raises(agentc.AgentError, match=r"endless.py:6: format: the agent traced more than 200 nodes"):
        agentc.place(str(g), ["cpu"], max_nodes=200)


@pytest.mark.slow
@needs_minilm
@needs_smollm
def test_real_rag_placement_on_thousands_of_devices(tmp_path):
    """After a first placement has converted the models into the cache (one-time work that
    does not depend on the cluster), 1,000 and 10,000 devices cost about what 10 do."""
    graph = EXAMPLES / "rag_agent_real.py"
    measure_place(graph, counted_cluster(tmp_path / "warm.yaml", 2))
    small = measure_place(graph, counted_cluster(tmp_path / "c10.yaml", 10))
    for n in (1000, 10000):
        got = measure_place(graph, counted_cluster(tmp_path / f"c{n}.yaml", n))
        assert got["rc"] == 0 and got["s"] < 60 and got["rss_mb"] < 2048, (n, got["s"], got["rss_mb"])
        assert got["rss_mb"] < small["rss_mb"] + 128, (n, small["rss_mb"], got["rss_mb"])
