"""The agent dialect: IRDL verification with graph.py locations, and a stable textual form."""

import pytest
from agentc.dialects import context
from conftest import EXAMPLES, agentc_cli
from torch_mlir import ir

from agentc.emit import agent_ir_text
from agentc.frontend.trace import trace_file


def test_print_parse_print_roundtrip():
    out = agentc_cli("compile", EXAMPLES / "rag_agent.py", "--emit", "agent", "--devices", "cpu")
    assert out.returncode == 0, out.stderr
    with context():
        again = ir.Module.parse(out.stdout).operation.get_asm(enable_debug_info=True)
    assert again.strip() == out.stdout.strip()
    assert '"agent.llm"' in out.stdout and 'loc("answer"(' in out.stdout


def test_wrong_operand_type_points_at_graph_line():
    g = trace_file(EXAMPLES / "rag_agent.py")
    text = agent_ir_text(g)
    # Feed a tensor where agent.llm expects text: the IRDL verifier must reject it.
    bad = text.replace('"agent.llm"(%prompt)', '"agent.llm"(%retrieve)').replace(
        "(!agent.text) -> (!agent.text) loc(\"answer\"", "(tensor<1x3xi32>) -> (!agent.text) loc(\"answer\"")
    assert bad != text
    from agentc.emit import format_diagnostics

    with context(), pytest.raises(ir.MLIRError) as e:
        ir.Module.parse(bad).operation.verify()
    msg = format_diagnostics(e.value)
    assert msg.startswith("rag_agent.py:") and "node 'answer'" in msg and "agent.text" in msg


def test_operators_stage_has_no_model_ops():
    out = agentc_cli("compile", EXAMPLES / "rag_agent.py", "--emit", "operators", "--devices", "cpu")
    assert out.returncode == 0, out.stderr
    assert '"agent.llm"' not in out.stdout and '"agent.embed"' not in out.stdout
    assert "linalg.matmul" in out.stdout or "linalg.batch_matmul" in out.stdout
    assert 'loc("answer/prefill"' in out.stdout


