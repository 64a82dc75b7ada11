"""Stages that compute, on a real Ray Serve (private cluster on 127.0.0.1): each example
agent's answers through its staged service equal `agentc run`'s."""

import json
import urllib.request

import pytest
from conftest import served, stage_metric

from agentc.serving.autoscale import ScalePolicy

pytest.importorskip("ray")


@pytest.mark.parametrize("graph", ["rag_agent.py", "fanout_agent.py"])
def test_stages_that_compute_answer_as_agentc_run(builds, graph):
    import agentc
    from agentc.serving.staged_service import serve_staged
    from agentc.serving.stages import from_plan

    build = builds(graph, ("cpu",)).build_dir
    g = from_plan(json.loads((build / "plan.json").read_text()))
    queries = ["What is 12 * 7?", "Where does the Rhine flow?"]
    with agentc.load(build) as s:
        reference = {q: s.run({"query": q})["outputs"] for q in queries}
    policy = ScalePolicy(sla_s=g.sla_s, service_s=g.latency_s(), start_s=1.0, max_replicas=1)
    with served(serve_staged, g, policy, "joint", 1.0, build=str(build)) as url:
        for q in queries:
            req = urllib.request.Request(f"{url}/v1/agents/{g.agent}", data=json.dumps({"query": q}).encode())
            with urllib.request.urlopen(req, timeout=120) as r:
                assert json.loads(r.read())["outputs"] == reference[q]
        stages = stage_metric(url, "agentc_stage_replicas")
    # rag: encoder, index and LLM each a stage; fan-out: its seven LLM calls share one
    assert len(stages) == {"rag_agent.py": 3, "fanout_agent.py": 1}[graph] == len(g.stages)
