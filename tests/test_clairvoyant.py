"""The clairvoyant policy (the bound `agentc bench serve-frontier` draws): it asks for the
replicas a burst will need one start time before the burst, from the arrivals to come.
Expected counts are worked out by hand from its rule."""

import math

from agentc.serving.arrivals import Arrival
from agentc.serving.autoscale import ScalePolicy
from agentc.serving.clairvoyant import Clairvoyant
from agentc.serving.simulate import Deployment, simulate
from agentc.serving.stages import Call, Stage, StageGraph

BURST = tuple(10.0 + 0.05 * k for k in range(20))  # 20 requests in [10.0, 10.95]


def test_it_sizes_for_the_busiest_second_ahead():
    p = Clairvoyant(sla_s=1.0, service_s=0.5, start_s=1.0, min_replicas=0, max_replicas=100,
                    target_utilisation=0.5, arrivals=BURST, window_s=1.0, lookahead_s=1.0)
    # At 8.5 s the windows start up to 10.5 s: [10.0, 11.0] holds all 20, 20/s x 0.5 s / 0.5.
    assert p.decide({}, 8.5, 0, 0)[0] == 20
    # At 7.25 s they start up to 9.25 s: [9.25, 10.25) holds the first 5, 5/s x 0.5 s / 0.5.
    assert p.decide({}, 7.25, 0, 0)[0] == math.ceil(5 * 0.5 / 0.5)
    # At 6.0 s they start up to 8.0 s: nothing arrives before 9.0 s.
    assert p.decide({}, 6.0, 0, 0)[0] == 0
    # After the burst nothing is ahead: none.
    assert p.decide({}, 12.0, 20, 5)[0] == 0


def test_in_the_simulator_its_replicas_are_up_when_the_burst_comes():
    """One stage, 0.5 s calls, replicas that take 1 s to start, SLA 0.6 s, one queue per stage
    (each call to the first free replica). Seeing the burst ahead, every call is served at once
    (0.5 s); agentc's policy, which sees it only as it comes, leaves calls waiting for
    replicas that are still starting."""
    g = StageGraph("a", {"s": Stage("s", ("d",), "gpu", 1.0, ("n",))}, (Call("n", "s", (), 0.5),), 0.0, 0.6)
    arrivals = [Arrival(0.0)] + [Arrival(t) for t in BURST]
    common = {"sla_s": 0.6, "service_s": 0.5, "start_s": 1.0, "min_replicas": 0, "max_replicas": 100,
              "target_utilisation": 0.5}
    seeing = Clairvoyant(**common, arrivals=tuple(a.at for a in arrivals))
    rows, _ = simulate(g, arrivals, Deployment("joint", {"s": 1}, seeing, margin=100.0, slots=1))
    assert max(r["latency_ms"] for r in rows) == 500.0
    rows, _ = simulate(g, arrivals, Deployment("joint", {"s": 1}, ScalePolicy(**common), margin=100.0, slots=1))
    assert max(r["latency_ms"] for r in rows) > 600.0
