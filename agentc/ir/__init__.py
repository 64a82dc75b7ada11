"""The `agent` dialect, defined in IRDL (agent.irdl.mlir) and loaded into MLIR contexts.

This module is the one adapter between agentc and the MLIR Python bindings that ship in
torch-mlir: every context agentc creates comes from `context()`, so the binding version is
pinned in one place.
"""

from __future__ import annotations

from pathlib import Path

from torch_mlir import ir
from torch_mlir.dialects import irdl

IRDL_PATH = Path(__file__).with_name("agent.irdl.mlir")
_IRDL_TEXT = IRDL_PATH.read_text()

# Ops that run on the host at the operator level (everything but agent.compute).
HOST_OPS = frozenset({
    "agent.format", "agent.join", "agent.tokenize", "agent.passages", "agent.tool",
    "agent.contains", "agent.if", "agent.detokenize", "agent.stop_at_eos", "agent.pair_tokenize",
    "agent.stop_at_text", "agent.uniform", "agent.ann_search",
})
# Agent-level ops that decompose-agent-ops must replace.
MODEL_OPS = frozenset({"agent.embed", "agent.vector_search", "agent.rerank", "agent.llm", "agent.module"})
# Marks a kernel's implementation (decompose-agent-ops): what a device runs, so the calls in
# it are not operators to place.
IMPL = "agent.impl"


def context() -> ir.Context:
    """A new context with the agent dialect loaded; unregistered ops are errors."""
    ctx = ir.Context()
    ctx.allow_unregistered_dialects = False
    with ctx, ir.Location.unknown():
        irdl.load_dialects(ir.Module.parse(_IRDL_TEXT))
    return ctx


def text_type() -> ir.Type:
    return ir.Type.parse("!agent.text")
