"""`agentc.place` / `agentc place`: cluster files, the TCO objective against the SLA,
what-if devices agentc cannot run, and clear errors for bad cluster files."""

import json
import textwrap

import pytest
from conftest import EXAMPLES, agentc_cli

import agentc

RAG = str(EXAMPLES / "rag_agent.py")
T4_H100 = """
devices:
  - {type: nvidia-t4}
  - {type: nvidia-h100-sxm}
links:
  - {between: [nvidia-t4, nvidia-h100-sxm], latency_us: 20, bandwidth_gbps: 12}
"""


def _cluster(tmp_path, text, name="cluster.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return str(path)


def _calls(placement):
    return [op for op in placement.ops if op.kind == "call"]


def test_place_reports_everything(tmp_path):
    p = agentc.place(RAG, _cluster(tmp_path, T4_H100), sla_ms=300, objective="latency")
    assert {op.device for op in _calls(p)} <= {"nvidia-t4", "nvidia-h100-sxm"}
    assert all(op.end >= op.start for op in p.ops)
    assert p.status in ("optimal", "feasible") and 0 <= p.gap < 1
    assert p.lower_bound_s <= p.makespan_s
    assert p.meets_sla and p.cost_per_request > 0
    assert set(p.utilisation) >= {"nvidia-t4", "nvidia-h100-sxm"}
    assert all(0 <= u <= 1 for u in p.utilisation.values())
    # Every transfer joins a producer and a consumer on different memories.
    for t in p.transfers:
        assert t.src != t.dst and t.bytes > 0 and t.seconds > 0
    data = p.to_json()
    assert {"ops", "transfers", "predicted_ms", "cost_per_request", "utilisation", "status", "lower_bound_ms",
            "gap"} <= set(data)
    assert "cost per request" in p.table()


def test_tco_uses_the_cheap_device_unless_the_sla_needs_the_fast_one(tmp_path):
    cluster = _cluster(tmp_path, T4_H100)
    t4_only = agentc.place(RAG, _cluster(tmp_path, "devices: [{type: nvidia-t4}]", "t4.yaml"),
                           objective="latency")
    fastest = agentc.place(RAG, cluster, objective="latency")
    assert fastest.makespan_s < t4_only.makespan_s
    loose = agentc.place(RAG, cluster, sla_ms=10 * t4_only.predicted_ms, objective="tco")
    assert {op.device for op in _calls(loose)} == {"nvidia-t4"}
    tight_sla = (fastest.predicted_ms + t4_only.predicted_ms) / 2
    tight = agentc.place(RAG, cluster, sla_ms=tight_sla, objective="tco")
    assert tight.predicted_ms <= tight_sla + 1e-9
    assert any(op.device == "nvidia-h100-sxm" for op in _calls(tight))
    assert loose.cost_per_request < tight.cost_per_request


def test_throughput_mode_keeps_utilisation_below_one(tmp_path):
    cluster = _cluster(tmp_path, T4_H100)
    p = agentc.place(RAG, cluster, sla_ms=1000, objective="tco", arrival_rate=50.0)
    assert all(u <= 1 + 1e-9 for u in p.utilisation.values())
    # Reserved devices are paid all the time: cost per request = sum of used rates / rate.
    used = {op.device for op in _calls(p)}
    rates = {"nvidia-t4": 0.526 / 3600, "nvidia-h100-sxm": 6.88 / 3600}
    assert p.cost_per_request == pytest.approx(sum(rates[d] for d in used) / 50.0, rel=1e-6)


def test_unreachable_sla_is_explained(tmp_path):
    with pytest.raises(agentc.AgentError) as e:
        agentc.place(RAG, _cluster(tmp_path, T4_H100), sla_ms=0.01, objective="tco", strict_sla=True)
    msg = str(e.value)
    assert "SLA 0.01 ms is unreachable: the lowest achievable latency is" in msg
    assert "binding resource:" in msg and "critical path:" in msg and " on nvidia-" in msg


def test_what_if_devices_place_but_do_not_build(tmp_path):
    cluster = _cluster(tmp_path, """
        devices:
          - {type: amd-mi300x, count: 2}
        links:
          - {between: [amd-mi300x, amd-mi300x], latency_us: 5, bandwidth_gbps: 64}
    """)
    p = agentc.place(RAG, cluster, sla_ms=100)
    assert {op.device for op in _calls(p)} <= {"amd-mi300x:0", "amd-mi300x:1"}
    r = agentc_cli("compile", RAG, "-o", tmp_path / "b", "--cluster", cluster)
    assert r.returncode == 2 and "has no agentc runtime" in r.stderr and "Traceback" not in r.stderr


def test_place_cli_json(tmp_path):
    r = agentc_cli("place", RAG, "--cluster", _cluster(tmp_path, T4_H100), "--sla-ms", "300", "--json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout.strip().splitlines()[-1])
    assert data["meets_sla"] and data["objective"] == "tco"
    assert {op["device"] for op in data["ops"] if op["kind"] == "call"} == {"nvidia-t4"}


def test_cost_from_capex_and_power(tmp_path):
    cluster = _cluster(tmp_path, """
        devices:
          - {type: nvidia-t4, capex_usd: 2000, years: 4, power_usd_per_kwh: 0.1}
    """)
    p = agentc.place(RAG, cluster, objective="latency")
    busy = sum(op.end - op.start for op in _calls(p))
    rate = 2000 / (4 * 8766) + 70 / 1e3 * 0.1  # $/h: capex over 4 years + 70 W at $0.10/kWh
    assert p.cost_per_request == pytest.approx(busy * rate / 3600, rel=1e-3)


@pytest.mark.parametrize("text, needle", [
    ("devices: [{type: nvidia-z9000}]", "devices[0].type: unknown device type 'nvidia-z9000'"),
    (("devices: [{type: nvidia-t4}, {type: nvidia-l4}]\nlinks: [{between: [nvidia-t4, nvidia-l4], "
     "bandwidth_gbps: -5}]"), "links[0].bandwidth_gbps: must be > 0, got -5"),
    ("devices: [{type: nvidia-t4, host_link: {bandwidth_gbps: 0}}]", "devices[0].host_link.bandwidth_gbps: must be > 0"),
    ("devices: [{type: nvidia-t4, count: 0}]", "devices[0].count: expected a whole number >= 1"),
    ("devices: [{type: nvidia-t4}]\nlinks: [{between: [nvidia-t4, gpu7], bandwidth_gbps: 5}]",
     "links[0].between: no device named 'gpu7'"),
    ("devices: {type: nvidia-t4}", "devices: expected a non-empty list"),
    ("devices: [nvidia-t4", "cannot read cluster"),
])
def test_bad_cluster_files(tmp_path, text, needle):
    cluster = _cluster(tmp_path, text)
    r = agentc_cli("place", RAG, "--cluster", cluster)
    err = [ln for ln in r.stderr.splitlines() if not ln.startswith("[agentc]")]
    assert r.returncode == 2 and len(err) == 1 and "Traceback" not in r.stderr, r.stderr
    assert err[0].startswith(f"agentc: error: {cluster}") and needle in err[0], err[0]


def test_no_link_where_a_transfer_is_needed(tmp_path):
    cluster = _cluster(tmp_path, "devices: [{type: nvidia-t4, host_link: null}]")
    r = agentc_cli("place", RAG, "--cluster", cluster)
    err = [ln for ln in r.stderr.splitlines() if not ln.startswith("[agentc]")]
    assert r.returncode == 2 and len(err) == 1, r.stderr
    assert "needs a transfer" in err[0] and "nvidia-t4" in err[0] and "no link joins them" in err[0]


def test_placement_keeps_kernels_off_a_device_whose_loops_would_stop_short():
    """With the CPU made slow, everything goes to the Vulkan device, except, once it has a
    loop limit below the vocabulary, greedy sampling (one invocation loops over the logits;
    lavapipe would return a wrong token). With that device alone the node is an error."""
    import dataclasses

    from agentc.compiler import CompileOptions
    from agentc.cost.catalog import load_catalog
    from agentc.cost.roofline import func_work
    from agentc.ir.lower import lower
    from agentc.models.kernels import impl_for
    from agentc.placement.cluster import local_cluster
    from agentc.placement.policy import place_lowered

    catalog = load_catalog()
    slow_cpu = dataclasses.replace(catalog.devices["cpu"], profile="", peak_flops=1e7,
                                   memory_bandwidth=1e6)

    def placed(limit, devices=("cpu", "vulkan")):
        vulkan = dataclasses.replace(catalog.devices["vulkan"], profile="",
                                     max_loop_iterations=limit)
        specs = {"cpu": slow_cpu, "vulkan": vulkan}
        cluster = local_cluster(list(devices), dataclasses.replace(
            catalog, devices={d: specs[d] for d in devices}))
        low = lower(RAG, cluster=cluster)
        placement = place_lowered(low, cluster, CompileOptions(quiet=True))
        return {op.name: (op.device, func_work(impl_for(low.funcs, op.callee, "vulkan")).row_loop)
                for op in _calls(placement)}

    free, limited = placed(None), placed(100)
    samples = [n for n in free if "/sample" in n]
    assert samples and all(free[n][0] == "vulkan" for n in samples)
    assert all(limited[n] == ("cpu", free[n][1]) for n in samples)
    assert all(row <= 100 for d, row in limited.values() if d == "vulkan")
    assert any(d == "vulkan" for d, _ in limited.values())
    with pytest.raises(agentc.AgentError, match=r"rag_agent.py:\d+: node '[\w/]+': no listed "
                       r"device can run it \(it loops over a row of \d+ in one dispatch, longer "
                       r"than every device's max_loop_iterations \(vulkan: 100\)"):
        placed(100, devices=("vulkan",))
