"""Scale guards: placement on clusters of 1,000 and 10,000 devices finishes in bounded time
and memory (identical devices pooled, agentc/useful_devices.py), whether a cluster file
gives one entry with a count or thousands of named entries; a graph.py that never stops
adding nodes ends with an error."""

import json
import subprocess
import sys
import textwrap

import pytest
from conftest import EXAMPLES, ROOT
from test_models_real import needs_minilm, needs_smollm

import agentc
from agentc.cluster import load_cluster
from agentc.useful_devices import chain_cover

LINKS = """links:
  - {between: [nvidia-t4, nvidia-t4], latency_us: 10, bandwidth_gbps: 12}
  - {between: [nvidia-t4, nvidia-h100-sxm], latency_us: 20, bandwidth_gbps: 12}
  - {between: [nvidia-h100-sxm, nvidia-h100-sxm], latency_us: 5, bandwidth_gbps: 400}
"""


def _counted(path, n):
    path.write_text(f"devices:\n  - {{type: nvidia-t4, count: {n // 2}}}\n"
                    f"  - {{type: nvidia-h100-sxm, count: {n - n // 2}}}\n" + LINKS)
    return path


def _named(path, n):
    entries = [f"  - {{type: nvidia-t4, name: t4-{i}}}" for i in range(n // 2)]
    entries += [f"  - {{type: nvidia-h100-sxm, name: h100-{i}}}" for i in range(n - n // 2)]
    path.write_text("devices:\n" + "\n".join(entries) + "\n" + LINKS)
    return path


def _place_measured(graph, cluster) -> dict:
    """`agentc place --json` in a fresh process: its placement, wall time and peak RSS."""
    code = textwrap.dedent(f"""
        import json, resource, sys, time
        from agentc.cli import main
        t0 = time.perf_counter()
        rc = main(["place", {str(graph)!r}, "--cluster", {str(cluster)!r}, "--json", "--time-limit", "5"])
        print(json.dumps({{"rc": rc, "s": time.perf_counter() - t0,
                          "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300, check=False)
    assert r.returncode == 0, r.stderr
    placement, measured = (json.loads(x) for x in r.stdout.strip().splitlines()[-2:])
    return {**measured, "placement": placement}


@pytest.mark.parametrize("n", [1000, 10000])
@pytest.mark.parametrize("layout", [_counted, _named])
def test_fanout_placement_on_thousands_of_devices(tmp_path, n, layout):
    got = _place_measured(EXAMPLES / "fanout_agent.py", layout(tmp_path / "c.yaml", n))
    assert got["rc"] == 0
    assert got["s"] < 60 and got["rss_mb"] < 2048, got
    used = {op["device"] for op in got["placement"]["ops"] if op["kind"] == "call"}
    assert used and got["placement"]["meets_sla"]
    assert len(got["placement"]["utilisation"]) <= 2 * 8 + 1  # each class listed up to its use


def test_memory_does_not_grow_with_identical_devices(tmp_path):
    small = _place_measured(EXAMPLES / "fanout_agent.py", _counted(tmp_path / "a.yaml", 100))
    large = _place_measured(EXAMPLES / "fanout_agent.py", _counted(tmp_path / "b.yaml", 100_000))
    assert large["rss_mb"] < small["rss_mb"] + 64, (small, large)


def test_a_pooled_cluster_lists_what_a_request_can_use(tmp_path):
    """The fan-out asks six LLMs at once: up to seven T4s (six in parallel, one for the
    summary's weights) are listed of 5,000; the same placement problem as a cluster of 7."""
    cluster = load_cluster(_counted(tmp_path / "c.yaml", 10_000))
    assert cluster.size == 10_000 and len(cluster.groups) == 2
    p = agentc.place(str(EXAMPLES / "fanout_agent.py"), cluster, objective="latency", time_limit_s=5)
    listed = [d for d in p.cluster.devices if d.startswith("nvidia-t4")]
    assert 6 <= len(listed) <= 8


def test_chain_cover_bounds_independent_operators():
    from agentc.plan import PlanOp

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
    _place_measured(graph, _counted(tmp_path / "warm.yaml", 2))
    small = _place_measured(graph, _counted(tmp_path / "c10.yaml", 10))
    for n in (1000, 10000):
        got = _place_measured(graph, _counted(tmp_path / f"c{n}.yaml", n))
        assert got["rc"] == 0 and got["s"] < 60 and got["rss_mb"] < 2048, (n, got["s"], got["rss_mb"])
        assert got["rss_mb"] < small["rss_mb"] + 128, (n, small["rss_mb"], got["rss_mb"])
