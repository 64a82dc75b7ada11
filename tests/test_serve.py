"""`agentc serve`: a build behind a real HTTP server on Ray Serve (a private one-node Ray
cluster, started and stopped by the server), requests over 127.0.0.1."""

import json
import socket
import threading
import urllib.error
import urllib.request

import pytest
from conftest import served

import agentc
from agentc.distributed.local_cluster import free_port

pytest.importorskip("ray")

KEY = "s3cret-key"
QUERIES = ["What is 12 * 7?", "Where does the Rhine flow?"]


@pytest.fixture(scope="module")
def server(builds, tmp_path_factory):
    from agentc.serving.server import serve_build

    build = builds("rag_agent.py", ("cpu",)).build_dir
    key = tmp_path_factory.mktemp("key") / "key"
    key.write_text(KEY + "\n")
    with agentc.load(build) as s:
        reference = {q: s.run({"query": q})["outputs"] for q in QUERIES}
    with served(serve_build, build, api_key_file=str(key), max_body_kb=1) as url:
        yield url, reference
    port = int(url.rsplit(":", 1)[1])
    assert _private_cluster_processes() == []
    with pytest.raises(OSError):  # nothing listens any more
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


def _private_cluster_processes() -> list[int]:
    """Running processes of the server's private cluster (its nodes' caches are under an
    `agentc-serve-` directory, in their environment)."""
    from pathlib import Path

    out = []
    for p in Path("/proc").iterdir():
        try:
            if p.name.isdigit() and b"agentc-serve-" in (p / "environ").read_bytes():
                out.append(int(p.name))
        except OSError:
            continue
    return out


def call(url, path, body=None, key=KEY, raw=None):
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(url + path, data=data, method="POST" if data is not None else "GET")
    if key:
        req.add_header("Authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def test_outputs_equal_the_runtime(server):
    url, reference = server
    for q in QUERIES:
        status, headers, body = call(url, "/v1/agents/rag", {"query": q})
        assert status == 200, body
        got = json.loads(body)
        assert got["outputs"] == reference[q] and got["agent"] == "rag"
        assert headers["X-Request-Id"] == got["id"]


def test_chat_completions(server):
    url, reference = server
    status, _, body = call(url, "/v1/chat/completions",
                           {"model": "rag", "messages": [{"role": "system", "content": "be brief"},
                                                         {"role": "user", "content": QUERIES[0]}]})
    assert status == 200, body
    got = json.loads(body)
    assert got["object"] == "chat.completion"
    assert got["choices"][0]["message"] == {"role": "assistant", "content": "\n".join(reference[QUERIES[0]])}


@pytest.mark.parametrize("path, body, raw, key, status, message", [
    ("/v1/agents/rag", {"q": "x"}, None, KEY, 400, "unknown input 'q' (the agent takes query)"),
    ("/v1/agents/rag", {}, None, KEY, 400, "missing input 'query'"),
    ("/v1/agents/rag", {"query": 7}, None, KEY, 400, "input 'query' must be text"),
    ("/v1/agents/rag", None, b"{not json", KEY, 400, "the body is not JSON"),
    ("/v1/agents/rag", None, b"[1, 2]", KEY, 400, "expected a JSON object, got list"),
    ("/v1/agents/other", {"query": "x"}, None, KEY, 404, "no agent 'other' here (this server runs 'rag')"),
    ("/v1/agents/rag", {"query": "x" * 2000}, None, KEY, 413, "the limit is 1024"),
    ("/v1/agents/rag", {"query": "x"}, None, None, 401, "missing or wrong bearer token"),
    ("/v1/agents/rag", {"query": "x"}, None, "wrong", 401, "missing or wrong bearer token"),
    ("/v1/chat/completions", {"messages": []}, None, KEY, 400, "a user message whose content is text"),
])
def test_errors_are_json_with_a_status(server, path, body, raw, key, status, message):
    url, _ = server
    got_status, headers, got = call(url, path, body, key=key, raw=raw)
    assert got_status == status, got
    err = json.loads(got)["error"]
    assert message in err["message"], err
    assert headers["X-Request-Id"]


def test_health_and_metrics(server):
    url, _ = server
    status, _, body = call(url, "/healthz")
    assert status == 200 and json.loads(body) == {"ok": True, "agent": "rag", "inputs": ["query"], "sla_ms": 2000, "mode": "real"}
    call(url, "/v1/agents/rag", {"query": QUERIES[1]})
    call(url, "/v1/agents/rag", {"q": "bad"})
    status, headers, body = call(url, "/metrics")
    text = body.decode()
    assert status == 200 and headers["Content-Type"].startswith("text/plain")
    counts = {ln.split("{")[1].split("}")[0]: float(ln.rsplit(" ", 1)[1]) for ln in text.splitlines()
              if ln.startswith("agentc_requests_total")}
    assert counts['agent="rag",status="200"'] >= 1 and counts['agent="rag",status="400"'] >= 1
    total = next(float(ln.rsplit(" ", 1)[1]) for ln in text.splitlines() if ln.startswith("agentc_request_seconds_count"))
    assert total == sum(counts.values())
    assert "agentc_requests_in_flight" in text


def test_loadtest_against_the_server(server, tmp_path):
    """Open-loop gamma arrivals through `agentc loadtest URL`: every request answered, the
    report's counts agree with its rows, and it ends with the line a script reads."""
    import csv

    from tests.conftest import agentc_cli

    url, _ = server
    key = tmp_path / "key"
    key.write_text(KEY)
    r = agentc_cli("loadtest", url, "--arrivals", "gamma", "--rate", "4", "--cv", "2", "--duration", "5",
                   "--seed", "3", "--api-key-file", key, "--out", tmp_path / "lt", "--quiet")
    assert r.returncode == 0, r.stderr
    last = dict(kv.split("=") for kv in r.stdout.strip().splitlines()[-1].split())
    assert last["lost"] == "0" and last["mode"] == "real"
    report = json.loads((tmp_path / "lt" / "report.json").read_text())
    rows = list(csv.DictReader((tmp_path / "lt" / "requests.csv").read_text().splitlines()))
    assert report["sent"] == len(rows) > 5 and report["ok"] == sum(row["status"] == "200" for row in rows)
    assert report["completed"] + report["refused"] + report["lost"] == report["sent"]
    assert (tmp_path / "lt" / "loadtest.png").stat().st_size > 0


@pytest.fixture
def app_server(builds):
    """The HTTP app of one in-process session behind uvicorn (no Ray): its options under test."""
    import time

    import uvicorn

    from agentc.serving.http_api import make_app

    rag = builds("rag_agent.py", ("cpu",)).build_dir
    servers = []

    def start(build=None, **options):
        session = agentc.load(build or rag)
        port = free_port()
        srv = uvicorn.Server(uvicorn.Config(make_app(session, **options), host="127.0.0.1", port=port,
                                            log_level="error"))
        t = threading.Thread(target=srv.run)
        t.start()
        while not srv.started:
            time.sleep(0.05)
        servers.append((srv, t, session))
        return f"http://127.0.0.1:{port}"

    yield start
    for srv, t, session in servers:
        srv.should_exit = True
        t.join(30)
        session.close()


def test_admission_control_refuses_with_retry_after(app_server):
    """Deadline 5 ms, no margin: the placement predicts ~2.3 ms a request, so with two in
    flight a third is refused at once, 503 with Retry-After; every request is answered."""
    from concurrent.futures import ThreadPoolExecutor

    url = app_server(deadline_ms=5.0, margin=0.0, timeout_ms=60000.0)
    with ThreadPoolExecutor(8) as pool:
        got = list(pool.map(lambda i: call(url, "/v1/agents/rag", {"query": QUERIES[i % 2]}, key=None), range(8)))
    statuses = [s for s, _, _ in got]
    assert statuses.count(200) >= 1 and statuses.count(503) >= 1 and set(statuses) <= {200, 503}, statuses
    refused = next((h, b) for s, h, b in got if s == 503)
    assert int(refused[0]["Retry-After"]) >= 1
    assert json.loads(refused[1])["error"]["type"] == "overloaded"


def test_timeout_is_504_and_counted_once(app_server):
    import time

    url = app_server(timeout_ms=1.0, deadline_ms=60000.0)
    status, _, body = call(url, "/v1/agents/rag", {"query": QUERIES[0]}, key=None)
    assert status == 504 and "no answer within 1 ms" in json.loads(body)["error"]["message"]
    # The run ends on its own (on a busy machine it took over 1 s); once it has, it must not
    # be counted again as a 200.
    end = time.monotonic() + 60
    while 'agentc_requests_in_flight{agent="rag"} 0' not in (text := call(url, "/metrics", key=None)[2].decode()) \
            and time.monotonic() < end:
        time.sleep(0.2)
    assert 'agentc_requests_total{agent="rag",status="504"} 1' in text
    assert 'status="200"' not in text
    assert "agentc_requests_in_flight{agent=\"rag\"} 0" in text


def test_streamed_tokens_add_up_to_the_answer(app_server, tmp_path):
    """`?stream=true` on an agent that answers with an LLM's text (tests/graphs/faults.py):
    server-sent deltas, then the outputs, then [DONE]; the deltas join to the output, which
    equals the runtime's. An agent whose output is not an LLM's is refused, 400."""
    from tests.conftest import GRAPHS

    build = tmp_path / "faults"
    agentc.compile(str(GRAPHS / "faults.py"), str(build), devices=["cpu"], quiet=True)
    q = {"query": "a good question"}
    with agentc.load(build) as s:
        reference = s.run(q)["outputs"]
    url = app_server(build)
    status, headers, body = call(url, "/v1/agents/faults?stream=true", q, key=None)
    assert status == 200 and headers["Content-Type"].startswith("text/event-stream")
    events = [e.removeprefix("data: ") for e in body.decode().split("\n\n") if e]
    assert events[-1] == "[DONE]"
    final = json.loads(events[-2])
    deltas = [json.loads(e)["text"] for e in events[:-2]]
    assert final["outputs"] == reference and len(deltas) >= 1
    assert "".join(deltas) == reference[0]
    # The same as OpenAI chat.completion.chunk events.
    status, _, body = call(url, "/v1/chat/completions", {"stream": True, "messages": [
        {"role": "user", "content": q["query"]}]}, key=None)
    events = [e.removeprefix("data: ") for e in body.decode().split("\n\n") if e]
    chunks = [json.loads(e) for e in events[:-1]]
    assert status == 200 and events[-1] == "[DONE]" and chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks) == reference[0]


def test_stream_refused_when_the_output_is_not_an_llm(app_server):
    url = app_server()
    status, _, body = call(url, "/v1/agents/rag?stream=true", {"query": "x"}, key=None)
    assert status == 400 and json.loads(body)["error"]["type"] == "not_streamable"


def test_loadtest_serving_a_build_counts_replica_seconds(builds, tmp_path):
    """TARGET a build: served here with 2 static emulated replicas (each holds a request
    30 ms, one at a time) for the run; the report says so, counts replicas from Serve over
    time, and prices them at the catalog's rate for the build's devices."""
    from agentc.cost.catalog import load_catalog
    from tests.conftest import agentc_cli

    build = builds("rag_agent.py", ("cpu",)).build_dir
    r = agentc_cli("loadtest", build, "--arrivals", "gamma", "--rate", "3", "--duration", "4", "--replicas", "2",
                   "--emulate", "--service-ms", "30", "--start-s", "0", "--out", tmp_path / "lt", "--quiet")
    assert r.returncode == 0, r.stderr[-2000:]
    report = json.loads((tmp_path / "lt" / "report.json").read_text())
    assert report["replicas_max"] == 2 and report["scaling"] == "static 2" and report["lost"] == 0
    assert report["mode"] == "emulate" and r.stdout.strip().endswith("mode=emulate") and report["p50_ms"] >= 30
    # Sampled twice a second over the run: 2 replicas x its wall time, within a sample each.
    assert report["replica_seconds"] == pytest.approx(2 * report["wall_s"], abs=2 * 0.6)
    price = load_catalog().devices["cpu"].cost_per_hour
    assert report["cost_usd"] == pytest.approx(report["replica_seconds"] / 3600 * price, abs=3e-8)  # replica-seconds to 1 ms
