"""A long-lived session stays bounded: the trace is a ring, tool calls that overrun their
timeouts are abandoned without a thread each (and past the pool, refused at once), close()
does not wait for them, and a prompt cut to the model's budget is said, not silent."""

import threading
import time

import pytest
from conftest import EXAMPLES

import agentc
from agentc.runtime.host_ops import RunError
from agentc.runtime.tool_pool import ToolPool
from agentc.runtime.trace import Trace


def test_trace_is_a_ring():
    t = Trace(max_events=5)
    for i in range(12):
        t.add("cpu", f"op{i}", i, float(i), i + 0.5)
    assert [e[1] for e in t.events] == [f"op{i}" for i in range(7, 12)]
    assert t.dropped == 7 and t.to_chrome()["metadata"] == {"dropped_events": 7}
    mark = t.added
    t.add("host", "late", 99, 20.0, 21.0)
    assert [e[1] for e in t.since(mark)] == ["late"]


def test_timed_out_tools_do_not_leak_threads():
    pool = ToolPool(threads=3)
    release = threading.Event()
    before = threading.active_count()
    for _ in range(50):  # each overruns its timeout, then returns before the next call
        with pytest.raises(TimeoutError):
            pool.call("slow", lambda: release.wait(0.01) or "late", [], 0.001)
        time.sleep(0.02)
    assert pool.thread_count() <= 3 and threading.active_count() <= before + 3
    time.sleep(0.2)
    assert pool.stuck() == [] and pool.call("echo", lambda x: x, ["hi"], 1.0) == "hi"


def test_a_pool_held_by_hung_tools_refuses_at_once():
    pool = ToolPool(threads=2)
    never = threading.Event()
    for _ in range(2):
        with pytest.raises(TimeoutError):
            pool.call("hang", never.wait, [], 0.01)
    t0 = time.perf_counter()
    with pytest.raises(RunError, match=r"tool 'echo' not started: all 2 tool threads are held by calls that "
                                       r"exceeded their timeouts and have not returned \(hang x2\)"):
        pool.call("echo", lambda x: x, ["hi"], 5.0)
    assert time.perf_counter() - t0 < 0.1
    assert pool.close() == ["hang", "hang"]
    never.set()


def test_close_returns_without_waiting_for_a_hung_tool(tmp_path, capfd):
    g = tmp_path / "hang.py"
    g.write_text(
        "import time\nimport agentc\n\n"
        "def stuck(q):\n    time.sleep(3600)\n    return q\n\n"
        "@agentc.agent\ndef a(q):\n    return agentc.tool(stuck, q, timeout_ms=200)\n")
    placement = agentc.compile(str(g), str(tmp_path / "b"), devices=["cpu"], quiet=True)
    s = agentc.load(placement.build_dir, tool_threads=1)
    with pytest.raises(RunError, match="exceeded its timeout of 200 ms"):
        s.run({"q": "x"})
    with pytest.raises(RunError, match="not started: all 1 tool threads are held"):
        s.run({"q": "y"})
    assert s.stats()["tools_stuck"] == ["stuck"] and s.stats()["tool_threads"] == 1
    t0 = time.perf_counter()
    assert s.close() == ["stuck"]
    assert time.perf_counter() - t0 < 0.2 + 1.0
    assert "closed with 1 tool call(s) still running past their timeouts, abandoned: stuck" in capfd.readouterr().err


def test_over_long_prompt_is_cut_with_a_warning(builds, capfd):
    """The prompt budget is a static shape (P); the tail, where the question is, is kept.
    The cut is an instant event in the trace each time and one stderr line per node."""
    placement = builds("rag_agent.py", ("cpu",))
    with agentc.load(placement.build_dir) as s:
        capfd.readouterr()
        for q in ("What is 2 + 2?", "Where does the Rhine flow? " * 3):
            s.run({"query": q})
        err = capfd.readouterr().err
        warned = [e for e in s.trace.events if e[5] is not None]
    assert err.count("agentc: warning: node 'answer/tokenize'") == 1, err
    assert "exceeds the 160-token budget of model 'tiny-lm': its first" in err
    assert len(warned) == 2 and all(e[1] == "answer/tokenize" for e in warned)
    assert s.stats()["warnings"] == 2


def test_python_api_takes_devices_as_text(tmp_path):
    p = agentc.compile(str(EXAMPLES / "fanout_agent.py"), str(tmp_path / "b"), devices="cpu", quiet=True)
    assert {op.device for op in p.ops if op.kind == "call"} == {"cpu"}
    with pytest.raises(agentc.AgentError, match=r"--devices: expected device names"):
        agentc.compile(str(EXAMPLES / "fanout_agent.py"), str(tmp_path / "c"), devices="cpu,", quiet=True)
