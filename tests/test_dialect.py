"""The agent dialect: IRDL verification with graph.py locations, and a stable textual form."""

import pytest
from conftest import EXAMPLES, agentc_cli
from torch_mlir import ir

from agentc.frontend.trace import trace_file
from agentc.ir import context


def test_print_parse_print_roundtrip():
    out = agentc_cli("compile", EXAMPLES / "rag_agent.py", "--emit", "agent", "--devices", "cpu")
    assert out.returncode == 0, out.stderr
    with context():
        again = ir.Module.parse(out.stdout).operation.get_asm(enable_debug_info=True)
    assert again.strip() == out.stdout.strip()
    assert '"agent.llm"' in out.stdout and 'loc("answer"(' in out.stdout


def test_wrong_operand_type_points_at_graph_line():
    """Feed a tensor where agent.llm expects text: the IRDL verifier rejects it, and the
    diagnostic names the node and its graph.py line."""
    from agentc.ir.emit import emit_agent_ir, format_diagnostics, op_name

    ctx = context()
    module = emit_agent_ir(trace_file(EXAMPLES / "rag_agent.py"), ctx)
    with ctx:
        ops = {op_name(o): o for o in module.body.operations[0].regions[0].blocks[0].operations}
        ops["answer"].operation.operands[0] = ops["retrieve"].result
        with pytest.raises(ir.MLIRError) as e:
            module.operation.verify()
    msg = format_diagnostics(e.value)
    assert msg.startswith("rag_agent.py:") and "node 'answer'" in msg and "agent.text" in msg, msg


def test_operators_stage_has_no_model_ops():
    out = agentc_cli("compile", EXAMPLES / "rag_agent.py", "--emit", "operators", "--devices", "cpu")
    assert out.returncode == 0, out.stderr
    assert '"agent.llm"' not in out.stdout and '"agent.embed"' not in out.stdout
    assert "linalg.matmul" in out.stdout or "linalg.batch_matmul" in out.stdout
    assert 'loc("answer/prefill"' in out.stdout


