"""A stage replica that batches calls (agentc/serving/batching.py) in the simulator, checked
against processor-sharing times worked out by hand."""

import json

import pytest

from agentc.serving.arrivals import Arrival
from agentc.serving.autoscale import ScalePolicy
from agentc.serving.batching import DECODE, PREFILL, Batching, Curve, SharedReplica, load
from agentc.serving.simulate import Deployment, simulate
from agentc.serving.stages import Call, Stage, StageGraph


def _batching(decode, prefill=((1, 1.0), (2, 2.0)), max_batch=4):
    return Batching(max_batch, {PREFILL: Curve(prefill), DECODE: Curve(decode)})


def test_curve_interpolates_and_grows_with_the_batch_past_its_last_point():
    c = Curve(((1, 1.0), (2, 1.2), (4, 1.6)))
    assert c(1) == 1.0 and c(2) == 1.2 and c(3) == pytest.approx(1.4)
    assert c(8) == pytest.approx(3.2)  # proportional past b = 4: compute-bound taken


def test_calls_held_together_share_the_replica():
    """Decode-only calls of 1 s each, slowdown 1.5 with two held: A alone until B comes at
    0.5 s (0.5 s of work left), then both at 1/1.5: A ends at 0.5 + 0.75 = 1.25 s having
    taken B 0.5 s on; B's last 0.5 s alone ends at 1.75 s."""
    r = SharedReplica(_batching(((1, 1.0), (2, 1.5))))
    r.add(0.0, 0.0, 1.0, "A")
    assert r.next_s() == pytest.approx(1.0)
    r.add(0.5, 0.0, 1.0, "B")
    assert r.next_s() == pytest.approx(0.75)
    assert r.advance(1.25) == ["A"]
    assert r.next_s() == pytest.approx(0.5)
    assert r.advance(1.75) == ["B"]


def test_prefill_and_decode_alternate():
    """A in decode (1 s left) and B in prefill (0.2 s, then 0.5 s of decode): half the
    replica each, so B's prefill ends at 0.4 s with A 0.8 s from its end; then both decode at
    1/1.25: B's 0.5 s take 0.625 s (A 0.3 s from its end), and A ends alone 0.3 s later."""
    r = SharedReplica(_batching(((1, 1.0), (2, 1.25))))
    r.add(0.0, 0.0, 1.0, "A")
    r.add(0.0, 0.2, 0.5, "B")
    assert r.next_s() == pytest.approx(0.4)
    assert r.advance(0.4) == []
    assert r.next_s() == pytest.approx(0.625)
    assert r.advance(1.025) == ["B"]
    assert r.next_s() == pytest.approx(0.3)
    assert r.advance(1.325) == ["A"]


def _llm_graph(sla_s=1.0):
    st = Stage("lm@gpu", ("g",), "gpu", 3.6, ("answer",))
    call = Call("answer", "lm@gpu", (), 0.1, prefill_s=0.0, step_s=0.1 / 9, max_tokens=10)
    return StageGraph("a", {"lm@gpu": st}, (call,), 0.0, sla_s)


def test_a_batching_replica_serves_a_burst_together_instead_of_in_turn():
    """Four requests at once on one replica, decode-dominated calls of 0.1 s, slowdown 1.2 at
    four: together all end at 0.12 s; one at a time the last waits for three before it."""
    g = _llm_graph()
    arrivals = [Arrival(0.0, 0, 10) for _ in range(4)]
    policy = ScalePolicy(sla_s=1.0, service_s=0.1)
    together = Deployment("static", {"lm@gpu": 1}, policy, margin=1e9,
                          batching={"lm@gpu": _batching(((1, 1.0), (4, 1.2)))})
    rows, _ = simulate(g, arrivals, together)
    assert [r["latency_ms"] for r in rows] == pytest.approx([120.0] * 4)
    rows, _ = simulate(g, arrivals, Deployment("static", {"lm@gpu": 1}, policy, margin=1e9, slots=1))
    assert sorted(r["latency_ms"] for r in rows) == pytest.approx([100.0, 200.0, 300.0, 400.0])


def test_the_scaler_sizes_a_batching_stage_for_its_batch():
    """At 40 calls/s of 0.1 s: 40 x 0.1 / 0.7 = 6 replicas one call at a time. Batching 4 at
    slowdown 1.2 (within the 0.9 s SLA slack x 0.5) costs 0.12 / 4 = 0.03 replica-s a call:
    40 x 0.03 / 0.7 = 2 replicas."""
    from agentc.serving.simulate import Simulation

    g = _llm_graph()
    policy = ScalePolicy(sla_s=1.0, service_s=0.1, min_replicas=0, max_replicas=64)
    batched = Simulation(g, Deployment("joint", {}, policy, batching={"lm@gpu": _batching(((1, 1.0), (4, 1.2)))}))
    plain = Simulation(g, Deployment("joint", {}, policy))
    for sim, want in ((plain, 6), (batched, 2)):
        sim.scaler.decide(0.0, 0, {}, {"lm@gpu": 1})
        assert sim.scaler.decide(1.0, 40, {}, {"lm@gpu": 1})["lm@gpu"] >= want
        assert sim.scaler.decide(2.0, 80, {}, {"lm@gpu": want})["lm@gpu"] == want


def test_curves_load_from_a_batching_summary_and_name_the_file_when_missing(tmp_path):
    rows = {"1": {"median_ms": 10.0}, "2": {"median_ms": 11.0}, "4": {"median_ms": 13.0}}
    path = tmp_path / "summary.json"
    path.write_text(json.dumps({"params": {"device": "X"}, "results": {"llm_decode_step": rows,
                                                                       "llm_prefill": rows}}))
    b = load(path, "llm", 8)
    assert b.slowdown(DECODE, 4) == pytest.approx(1.3) and b.max_batch == 8 and "X" in b.source
    with pytest.raises(ValueError, match="summary.json: no batching curve for a search stage"):
        load(path, "search", 8)


def test_a_replica_is_sized_for_the_cheapest_batch_within_the_slack():
    """Decode 1.0 at one, 1.2 at four, 6.0 at eight (a cliff): per call 1.0, 0.3, 0.75, so four,
    whatever the slack beyond 0.2 s; with 0.1 s of slack on a 1 s call, two (f(2) = 1.067)."""
    b = _batching(((1, 1.0), (4, 1.2), (8, 6.0)), max_batch=16)
    size, per = b.capacity(0.0, 1.0, 10.0)
    assert size == 4 and per == pytest.approx(0.3)
    assert b.capacity(0.0, 1.0, 0.1)[0] == 2
