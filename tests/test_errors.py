"""Bad input: one line naming the node and graph.py file:line (or the flag), a non-zero
exit, no traceback; a failing request leaves the runtime serving the next one."""

import re

import pytest
from conftest import EXAMPLES, GRAPHS, agentc_cli

import agentc
from agentc.runtime.session import RunError


def _one_line_error(proc, *needles):
    assert proc.returncode != 0
    err = [ln for ln in proc.stderr.strip().splitlines() if not ln.startswith("[agentc]")]
    assert "Traceback" not in proc.stderr
    assert len(err) == 1 and err[0].startswith("agentc: error:"), proc.stderr
    for n in needles:
        assert n in err[0], err[0]


@pytest.mark.parametrize("graph, needles", [
    ("syntax_error.py", ["syntax_error.py:4", "syntax error"]),
    ("cycle.py", ["cycle.py:10", "cycle", "'first'", "'second'"]),
    ("shape_mismatch.py", ["shape_mismatch.py:9", "shape mismatch", "64-dim", "tensor<1x32xi32>"]),
    ("unknown_op.py", ["unknown_op.py:6", "agentc.frobnicate"]),
])
def test_compile_errors(graph, needles, tmp_path):
    _one_line_error(agentc_cli("compile", GRAPHS / graph, "-o", tmp_path / "b", "--devices", "cpu"), *needles)


def test_unknown_device(tmp_path):
    _one_line_error(agentc_cli("compile", EXAMPLES / "rag_agent.py", "-o", tmp_path, "--devices", "cpu,tpu"),
                    "--devices", "'tpu'")


def test_no_device_can_run(tmp_path):
    catalog = tmp_path / "catalog.yaml"
    from agentc.cost.catalog import CATALOG_PATH

    catalog.write_text(CATALOG_PATH.read_text().replace("memory_bytes: 8.0e9", "memory_bytes: 1000"))
    with pytest.raises(agentc.AgentError, match=r"rag_agent.py:\d+: node 'embed_query/encode': no listed device"):
        agentc.compile(str(EXAMPLES / "rag_agent.py"), str(tmp_path / "b"), devices=["cpu"], catalog=str(catalog),
                       quiet=True)


def test_unreachable_sla(tmp_path):
    warn = agentc_cli("compile", EXAMPLES / "rag_agent.py", "-o", tmp_path / "a", "--devices", "cpu", "--sla-ms", "0.5")
    assert warn.returncode == 0, warn.stderr
    assert re.search(r"warning: .*rag_agent.py:\d+: agent 'rag': SLA 0.5 ms is unreachable: the lowest "
                     r"achievable latency is [\d.]+ ms", warn.stderr)
    assert "binding resource: compute" in warn.stderr and "critical path:" in warn.stderr
    assert re.search(r"answer/decode11 on cpu", warn.stderr)  # the path names operators and devices
    strict = agentc_cli("compile", EXAMPLES / "rag_agent.py", "-o", tmp_path / "b", "--devices", "cpu",
                        "--sla-ms", "0.5", "--strict-sla")
    assert strict.returncode == 2 and "Traceback" not in strict.stderr
    first = next(ln for ln in strict.stderr.splitlines() if not ln.startswith("[agentc]"))
    assert re.match(r"agentc: error: .*rag_agent.py:\d+: agent 'rag': SLA 0.5 ms is unreachable", first)
    assert "critical path:" in strict.stderr  # the explanation follows the error line
    assert not (tmp_path / "b" / "plan.json").exists()


def test_tool_failures_and_recovery(tmp_path):
    placement = agentc.compile(str(GRAPHS / "tools.py"), str(tmp_path / "b"), devices=["cpu"], quiet=True)
    with agentc.load(placement.build_dir) as s:
        with pytest.raises(RunError, match=r"node 'explode' \(tools.py:23\): tool 'explode' raised ValueError: kaboom"):
            s.run({"q": "boom"})
        with pytest.raises(RunError, match=r"node 'slow' \(tools.py:24\): tool 'slow' exceeded its timeout of 200 ms"):
            s.run({"q": "sleep"})
        assert s.run({"q": "hi"})["outputs"] == ["fine awake echo:hi"]
    run = agentc_cli("run", placement.build_dir, "--input", "q=boom")
    _one_line_error(run, "node 'explode'", "tools.py:23", "kaboom")
