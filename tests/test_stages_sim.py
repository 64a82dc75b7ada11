"""Stages of a placed plan, the stage scaler, the simulator and the static baselines, each
checked against numbers worked out by hand from queueing rules, not against their own output."""

import math

import pytest

from agentc.serving import baselines
from agentc.serving.arrivals import Arrival
from agentc.serving.autoscale import ScalePolicy
from agentc.serving.compare import compare
from agentc.serving.simulate import Deployment, simulate
from agentc.serving.stage_scaler import StageScaler, predicted_s
from agentc.serving.stages import Call, Stage, StageGraph, stage_graph


def op(name, kind, device, start, end, inputs=(), outputs=(), callee=""):
    return {"name": name, "kind": kind, "device": device, "start": start, "end": end, "inputs": list(inputs),
            "outputs": list(outputs), "callee": callee, "guards": []}


def rag_ops():
    """tokenize (host) -> embed (gpu, 2 ms) -> search (gpu, 1 ms) -> prompt (host) -> an LLM:
    prefill 10 ms + sample0 1 ms, then 3 steps of decode 4 ms + sample 1 ms + stop."""
    ops = [op("tok", "tokenize", "host", 0, 0.0001, ["in0"], ["v1"]),
           op("embed/block0", "call", "g", 0, 0.002, ["v1"], ["v2"], "enc__block"),
           op("search/top", "call", "g", 0, 0.001, ["v2"], ["v3"], "index_k__top"),
           op("prompt", "format", "host", 0, 0.0, ["v3", "in0"], ["v4"]),
           op("answer/tokenize", "tokenize", "host", 0, 0.0, ["v4"], ["t0"]),
           op("answer/prefill", "call", "c", 0, 0.010, ["t0"], ["k0"], "lm__prefill"),
           op("answer/sample0", "call", "c", 0, 0.001, ["k0"], ["s0"], "lm__sample")]
    prev = "s0"
    for k in (1, 2, 3):
        ops += [op(f"answer/stop{k}", "stop_at_eos", "host", 0, 0.0, [prev], [f"x{k}"]),
                op(f"answer/decode{k}", "call", "c", 0, 0.004, [f"x{k}"], [f"d{k}"], "lm__decode"),
                op(f"answer/sample{k}", "call", "c", 0, 0.001, [f"d{k}"], [f"s{k}"], "lm__sample")]
        prev = f"s{k}"
    ops.append(op("answer/detokenize", "detokenize", "host", 0, 0.0, ["s0", "s1", "s2", "s3"], ["out"]))
    return ops


def test_stages_group_calls_by_model_and_device_type_in_graph_order():
    g = stage_graph(rag_ops(), {"g": "nvidia-t4", "c": "nvidia-h100-sxm"}, {"g": 0.5, "c": 4.0})
    assert list(g.stages) == ["enc@nvidia-t4", "index_k@nvidia-t4", "lm@nvidia-h100-sxm"]
    calls = {c.node: c for c in g.calls}
    assert calls["search"].after == ("embed",)
    assert calls["answer"].after == ("search",)  # through the host-only prompt node
    assert g.stages["lm@nvidia-h100-sxm"].price_per_hour == 4.0
    a = calls["answer"]
    assert a.service_s == pytest.approx(0.011 + 3 * 0.005)
    assert a.prefill_s == pytest.approx(0.011) and a.step_s == pytest.approx(0.005) and a.max_tokens == 4
    assert a.service(1) == pytest.approx(0.011)  # the first token comes with the prefill
    assert a.service(3) == pytest.approx(0.021)
    assert a.service(50) == pytest.approx(a.service_s)  # capped to max_tokens
    assert g.latency_s() == pytest.approx(0.002 + 0.001 + 0.026 + 0.0001)


def test_fanout_branches_of_one_model_share_a_stage():
    ops = []
    for b in range(3):
        ops.append(op(f"llm_{b}/prefill", "call", "c", 0, 0.01, ["in0"], [f"o{b}"], "lm__prefill"))
    ops.append(op("views", "join", "host", 0, 0.0, ["o0", "o1", "o2"], ["j"]))
    ops.append(op("summary/prefill", "call", "c", 0, 0.01, ["j"], ["out"], "lm__prefill"))
    g = stage_graph(ops, {"c": "cpu"}, {"c": 0.1})
    assert list(g.stages) == ["lm@cpu"] and g.visits("lm@cpu") == 4
    assert {c.node: c.after for c in g.calls}["summary"] == ("llm_0", "llm_1", "llm_2")


def one_stage(service=0.1, price=3.6, sla=1.0):
    return StageGraph("a", {"s": Stage("s", ("d",), "gpu", price, ("n",))}, (Call("n", "s", (), service),), 0.0, sla)


def test_simulated_queue_on_one_replica_matches_hand_computed_waits():
    g = one_stage(service=0.1, sla=10.0)
    arrivals = [Arrival(0.0), Arrival(0.05), Arrival(0.3)]
    rows, costs = simulate(g, arrivals, Deployment("static", {"s": 1}, ScalePolicy(sla_s=10.0, service_s=0.1)))
    # FIFO on one replica: 0-0.1, 0.1-0.2 (waited 0.05), 0.3-0.4.
    assert [r["latency_ms"] for r in rows] == pytest.approx([100.0, 150.0, 100.0])
    # one replica for the 0.3 s to the last arrival... until the last completion at 0.4 s, at $3.6/h
    assert costs["cost_usd"] == pytest.approx(0.4 / 3600 * 3.6)


def test_hops_delay_each_call_on_the_path():
    g = chain(n=3, service=0.01)
    policy = ScalePolicy(sla_s=100.0, service_s=0.03)
    rows, _ = simulate(g, [Arrival(0.0)], Deployment("static", dict.fromkeys(g.stages, 1), policy, hop_s=0.005))
    assert rows[0]["latency_ms"] == pytest.approx(3 * (10 + 5))


def test_admission_refuses_what_cannot_meet_the_deadline():
    g = one_stage(service=0.1, sla=0.25)  # deadline with margin 0.5: 0.375 s
    arrivals = [Arrival(0.0)] * 5
    rows, _ = simulate(g, arrivals, Deployment("static", {"s": 1}, ScalePolicy(sla_s=0.25, service_s=0.1)))
    # predicted: 1st 0.1, 2nd 0.2, 3rd 0.3 admitted; 4th 0.4 > 0.375 refused, 5th too.
    assert [r["status"] for r in rows] == [200, 200, 200, 503, 503]
    assert predicted_s(g, {"s": 3}, {"s": 1}, {}, {"s": 0.1}) == pytest.approx(0.4)
    assert predicted_s(g, {"s": 0}, {"s": 0}, {"s": 2.0}, {"s": 0.1}) == pytest.approx(2.1)  # waits for a start


def chain(n=3, service=0.01, start=1.0):
    stages = {f"s{k}": Stage(f"s{k}", (f"d{k}",), "gpu", 1.0, (f"n{k}",)) for k in range(n)}
    calls = tuple(Call(f"n{k}", f"s{k}", (f"n{k - 1}",) if k else (), service) for k in range(n))
    return StageGraph("chain", stages, calls, 0.0, 100.0)


def test_joint_scaling_starts_a_cold_chain_once_reactive_once_per_stage():
    g = chain()
    policy = ScalePolicy(sla_s=100.0, service_s=0.03, start_s=1.0, min_replicas=0)
    first = {}
    for mode in ("joint", "reactive"):
        rows, _ = simulate(g, [Arrival(0.0)], Deployment(mode, {"s0": 0, "s1": 0, "s2": 0}, policy, margin=1e9))
        first[mode] = rows[0]["latency_ms"] / 1e3
    assert first["joint"] == pytest.approx(1.0 + 3 * 0.01)  # all three start together
    assert first["reactive"] == pytest.approx(3 * (1.0 + 0.01))  # each starts when the call reaches it


def test_joint_scaler_sizes_downstream_stages_from_ingress_arrivals():
    g = chain(service=0.5)
    sc = StageScaler(g, ScalePolicy(sla_s=100.0, service_s=1.0, start_s=0.0, max_replicas=100, alpha=1.0))
    current = dict.fromkeys(g.stages, 1)
    sc.decide(0.0, 0, {}, current)
    t = sc.decide(1.0, 10, {"s0": 10}, current)  # 10 requests/s reached the ingress; none downstream yet
    need = math.ceil(10 * 0.5 / 0.7)
    assert t == {"s0": need, "s1": need, "s2": need}
    r = StageScaler(g, ScalePolicy(sla_s=100.0, service_s=1.0, start_s=0.0, max_replicas=100, alpha=1.0), "reactive")
    r.decide(0.0, 0, {}, current)
    assert r.decide(1.0, 10, {"s0": 10}, current) == {"s0": need, "s1": 1, "s2": 1}


def test_static_baselines_sizing():
    g = one_stage(service=0.1, price=2.0)
    arrivals = [Arrival(k * 0.05) for k in range(200)] + [Arrival(10 + k * 0.5) for k in range(20)]
    assert baselines.peak_rate(arrivals) == pytest.approx(20.0)  # 200 in the first 10 s
    assert baselines.static_peak(g, arrivals, 0.7) == {"s": math.ceil(20 * 0.1 / 0.7)}
    assert baselines.static_iso_cost(g, arrivals, 7.0) == {"s": 3}  # $2/h each within $7/h


def test_compare_finds_the_cheapest_static_that_reaches_the_dynamic_slo():
    g = one_stage(service=0.1, price=1.0, sla=0.5)
    arrivals = [Arrival(k * 0.02) for k in range(500)]  # 50/s for 10 s: needs >= 5 replicas
    policy = ScalePolicy(sla_s=0.5, service_s=0.1, start_s=0.5, max_replicas=32)

    def runner(scaling, replicas):
        return simulate(g, arrivals, Deployment(scaling, replicas, policy))

    result, _ = compare(g, arrivals, runner, 0.7, "simulate")
    iso = result["static_iso_slo"]
    assert iso["slo_pct"] >= result["dynamic"]["slo_pct"]
    fewer = {"s": iso["replicas"]["s"] - 1}
    rows, costs = runner("static", fewer)
    from agentc.serving.compare import report

    assert report(rows, costs, g, arrivals[-1].at, "simulate")["slo_pct"] < result["dynamic"]["slo_pct"]
    assert result["ratios"]["cost_ratio"] == pytest.approx(result["dynamic"]["cost_usd"] /
                                                           result["static_peak"]["cost_usd"], rel=1e-3)
