"""A staged service on a real Ray Serve (private cluster on 127.0.0.1): a deployment per
stage, emulated replicas holding each call for its service time. The checks are timings and
counts worked out from the graph by hand: fan-out branches run at once, a cold request starts
every stage together (joint scaling), admission refuses what cannot meet the deadline."""

import json
import re
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest
from conftest import served, stage_metric

from agentc.serving.autoscale import ScalePolicy
from agentc.serving.stages import Call, Stage, StageGraph

pytest.importorskip("ray")

START_S = 1.0


def fanout_graph() -> StageGraph:
    stages = {n: Stage(n, (n,), "nvidia-t4", 1.0, (n,)) for n in ("a", "b", "c")}
    calls = (Call("a", "a", (), 0.3), Call("b", "b", (), 0.3), Call("c", "c", ("a", "b"), 0.1))
    return StageGraph("panel", stages, calls, 0.0, 1.0, {"inputs": ["query"]})


@pytest.fixture(scope="module")
def staged():
    from agentc.serving.staged_service import serve_staged

    g = fanout_graph()
    policy = ScalePolicy(sla_s=1.0, service_s=0.4, start_s=START_S, min_replicas=0, max_replicas=1)
    # (a generous timeout: a killed replica's replacement starts a process on two busy cores)
    with served(serve_staged, g, policy, "joint", START_S, initial=dict.fromkeys(g.stages, 0),
                timeout_ms=60_000) as url:
        yield url


def post(url):
    req = urllib.request.Request(url + "/v1/agents/panel", data=json.dumps({"query": "q"}).encode(), method="POST")
    t0 = time.perf_counter()
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            return r.status, time.perf_counter() - t0, r.headers
    except urllib.error.HTTPError as e:
        return e.code, time.perf_counter() - t0, e.headers


def test_staged_service(staged):
    # Cold: no stage has a replica. Joint scaling asks for all three when the request arrives.
    status, first, _ = post(staged)
    assert status == 200
    assert first >= START_S + 0.3 + 0.1
    assert stage_metric(staged, "agentc_stage_replica_starts_total") == {"a": 1, "b": 1, "c": 1}
    # Warm: the branches run at once (0.3 s), then the join's call (0.1 s); in sequence it
    # would be 0.7 s.
    warm = min(post(staged)[1] for _ in range(3))
    assert 0.4 <= warm < 0.65
    # The service time the scaler uses: each emulated replica's hold (0.3 s, 0.3 s, 0.1 s).
    held = stage_metric(staged, "agentc_stage_call_seconds")
    assert 0.3 <= held["a"] < 0.36 and 0.3 <= held["b"] < 0.36 and 0.1 <= held["c"] < 0.16
    # A burst on one replica per stage: deadline 1.5 s (SLA 1 s + 50%); the k-th request is
    # predicted at about 0.3 k + 0.1 s on stage a, so the later ones are refused at once.
    with ThreadPoolExecutor(12) as pool:
        results = list(pool.map(lambda _: post(staged), range(12)))
    refused = [r for r in results if r[0] == 503]
    assert refused and all(r[2].get("Retry-After") for r in refused)
    assert any(r[0] == 200 for r in results)
    assert max(r[1] for r in refused) < 0.5  # refused early, not after queueing
    assert stage_metric(staged, "agentc_stage_in_flight") == {"a": 0, "b": 0, "c": 0}
    seconds = stage_metric(staged, "agentc_stage_replica_seconds_total")
    assert all(v > first for v in seconds.values())  # counted from the moment asked for


def replica_of(stage: str):
    import ray

    names = [a["name"] for a in ray.util.list_named_actors(all_namespaces=True)
             if a["namespace"] == "serve" and f"#stage-{stage}#" in a["name"]]
    assert names, "no replica of stage " + stage
    return ray.get_actor(names[0], namespace="serve")


def test_replica_killed_mid_request_loses_nothing(staged):
    import ray

    post(staged)  # warm
    with ThreadPoolExecutor(3) as pool:
        futures = [pool.submit(post, staged) for _ in range(3)]
        time.sleep(0.15)  # the first call is on stage a's only replica
        ray.kill(replica_of("a"))
        results = [f.result() for f in futures]
    assert all(status in (200, 503) for status, _, _ in results), results
    assert any(status == 200 for status, _, _ in results)
    assert stage_metric(staged, "agentc_stage_replicas_ready")["a"] == 1  # replaced
    text = urllib.request.urlopen(staged + "/metrics", timeout=10).read().decode()
    assert float(re.search(r"^agentc_stage_retries_total (\S+)$", text, re.MULTILINE).group(1)) >= 1

