"""`agentc calibrate` and `agentc run --explain`: operator times measured on this machine
price the same kernels in later compiles (and, through their class, kernels not measured),
and the explanation's measured side agrees with the request's wall time."""

from __future__ import annotations

import json
import os
import re
import statistics
import textwrap
import time

import pytest

GRAPH = """
    import agentc

    @agentc.agent(sla_ms=60000)
    def chat(query):
        a = agentc.llm(agentc.format("Q: {q}", q=query), model="tiny-lm", max_tokens=TOKENS, name="a",
                       decode_chunk=1)
        return agentc.format("{0}!", a, name="reply")
    """


@pytest.fixture()
def own_cache(tmp_path, monkeypatch):
    """Measurements go to a cache of this test's own: other tests' placements stay priced
    by the profiles."""
    monkeypatch.setenv("AGENTC_CACHE", str(tmp_path / "cache"))
    return tmp_path


def _compile(tmp_path, name: str, tokens: int):
    import agentc

    (tmp_path / f"{name}.py").write_text(textwrap.dedent(GRAPH.replace("TOKENS", str(tokens))))
    return agentc.compile(str(tmp_path / f"{name}.py"), str(tmp_path / name), devices=["cpu"], quiet=True)


def test_calibrated_kernels_are_priced_as_measured(own_cache):
    from agentc.cost import measured
    from agentc.cost.calibrate import calibrate

    tmp_path = own_cache
    first = _compile(tmp_path, "first", 6)
    # The explanation's measured span is each request as the runtime ran it: within the
    # request's wall time (timed around the same runs), and most of it.
    from agentc.runtime.explain import by_request, explain
    from agentc.runtime.session import Session

    with Session(first.build_dir, trace_events=None) as s:
        s.run({"query": "warm"})
        walls = []
        for _ in range(5):
            t0 = time.perf_counter()
            s.run({"query": "hello"})
            walls.append((time.perf_counter() - t0) * 1e3)
        requests = by_request(s.trace.events)[1:]
    spans = [explain(s.plan["ops"], 0.0, [r]).measured_ms for r in requests]
    assert len(spans) == 5 and all(span <= wall for span, wall in zip(spans, walls))
    assert explain(s.plan["ops"], 0.0, requests).measured_ms >= 0.5 * statistics.median(walls)
    done = calibrate(str(first.build_dir), {"query": "hello"}, requests=3, say=lambda *a, **k: None)
    assert done["kernels"] == 3  # prefill, decode, sample
    assert {g for g, *_ in done["before"].rows} >= {"a/prefill", "a/decodeN", "a/sampleN", "a/tokenize"}
    # A second agent with the same kernels (another max_tokens) is priced with the measurements.
    second = _compile(tmp_path, "second", 9)
    again = {op.name: (op.end - op.start) for op in second.ops}
    pred = {op.name: (op.end - op.start) for op in first.ops}
    decode = next(k for k in done["before"].rows if k[0] == "a/decodeN")
    # the median of this run's calls, and the runtime's time between operators on top
    assert again["a/decode3"] - measured.op_gap_seconds("cpu") == pytest.approx(decode[3] / 1e3, rel=0.35)
    assert again["a/decode3"] != pytest.approx(pred["a/decode3"], rel=1e-6)
    assert measured.host_seconds("tokenize", "tiny-lm@5x9") is not None  # the budget aside


def test_class_correction_prices_kernels_not_measured(own_cache):
    from agentc.cost import measured

    measured.record_ratio("vecmat_t", "cpu", "k1", 3.0)
    measured.record_ratio("vecmat_t", "cpu", "k2", 2.0)
    measured.record_ratio("vecmat_t", "cpu", "k3", 4.0)
    assert measured.class_factor("vecmat_t", "cpu") == 3.0
    measured.record_ratio("vecmat_t", "cpu", "k3", 2.0)  # calibrated again: replaces its own
    assert measured.class_factor("vecmat_t", "cpu") == 2.0
    assert measured.class_factor("vecmat_t", "cuda") is None


def test_run_explain_and_calibrate_cli(own_cache):
    from tests.conftest import agentc_cli

    build = _compile(own_cache, "cli", 4).build_dir
    out = agentc_cli("run", str(build), "--input", "query=hi", "--explain")
    assert out.returncode == 0, out.stderr
    assert "request: predicted" in out.stderr and "a/decodeN" in out.stderr
    bad = agentc_cli("calibrate", str(build), "--input", "nope=hi", "--requests", "1")
    assert bad.returncode != 0 and "unknown input 'nope'" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1


def test_calibrate_runs_where_no_compiler_is_installed(own_cache):
    """On a machine with the IREE runtime alone (a GPU machine here has no torch-mlir), the
    build's plan says what calibrate needs of each kernel; its records are the ones a later
    compile here looks up."""
    from agentc.cost import measured
    from tests.conftest import agentc_cli

    placement = _compile(own_cache, "nocompiler", 4)
    blocker = own_cache / "blocked"
    (blocker / "torch_mlir").mkdir(parents=True)
    (blocker / "torch_mlir" / "__init__.py").write_text("raise ImportError('torch_mlir is not installed here')\n")
    env = {"PYTHONPATH": os.pathsep.join([str(blocker), os.environ.get("PYTHONPATH", "")])}
    out = agentc_cli("calibrate", str(placement.build_dir), "--input", "query=hi", "--requests", "1", env=env)
    assert out.returncode == 0, out.stderr
    plan = json.loads((placement.build_dir / "plan.json").read_text())
    for key, k in plan["kernels"].items():
        assert measured.kernel_seconds(k["digest"], key.split("|")[1]) is not None, key


def test_a_devices_runtime_gap_prices_only_its_own_operators(own_cache):
    """The runtime's time between operators is measured per device: a gap calibrated on
    another device (lavapipe's submissions) leaves this device's operators as they were,
    and its own gap is added to each of its operators."""
    from agentc.cost import measured

    def times(name: str) -> dict[str, tuple[str, float]]:  # the format node's number differs per compile
        return {re.sub(r"^format_\d+$", "format", op.name): (op.kind, op.end - op.start)
                for op in _compile(own_cache, name, 4).ops}

    plain = times("plain")
    measured.record_op_gap("vulkan", 5.0)
    other = times("other")
    assert {n: s for n, (_, s) in other.items()} == pytest.approx({n: s for n, (_, s) in plain.items()}, rel=1e-9)
    measured.record_op_gap("cpu", 5.0)
    own = times("own")
    assert own.keys() == plain.keys()
    for name, (kind, seconds) in own.items():
        assert seconds == pytest.approx(plain[name][1] + (5.0 if kind == "call" else 0.0), rel=1e-6), name
