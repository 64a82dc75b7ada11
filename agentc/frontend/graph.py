"""The traced agent: nodes over symbolic values, each with the graph.py line it came from.

This is the frontend's output type. `emit_agent_ir` turns it into the `agent` dialect; the
reference interpreter executes it directly with PyTorch/NumPy.
"""

from __future__ import annotations

from dataclasses import dataclass, field


class AgentError(Exception):
    """A user error: the message already names the node and graph.py file:line."""


@dataclass(frozen=True)
class SourceLoc:
    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(frozen=True)
class TensorType:
    shape: tuple[int, ...]
    dtype: str  # "f32" | "i32"

    def mlir(self) -> str:
        return "tensor<" + "x".join(str(d) for d in self.shape) + f"x{self.dtype}>"


TEXT = "text"
BOOL = "bool"


@dataclass
class Value:
    node: Node | None  # None for graph inputs
    index: int
    type: object  # TEXT | BOOL | TensorType
    name: str = ""

    def __bool__(self):
        raise AgentError(
            f"{self.describe()} is only known when the agent runs; branch on it with "
            "agentc.cond(pred, then_fn, else_fn), not with Python `if`"
        )

    def describe(self) -> str:
        if self.node is None:
            return f"input '{self.name}'"
        return f"node '{self.node.name}' ({self.node.loc})"


@dataclass
class Node:
    name: str
    op: str  # agent dialect op name without the prefix, e.g. "llm"
    inputs: list[Value]
    attrs: dict
    loc: SourceLoc
    results: list[Value] = field(default_factory=list)
    after: list[str] = field(default_factory=list)  # control dependencies, by node name
    branches: tuple[Graph, Graph] | None = None  # for "if": then, else

    def where(self) -> str:
        return f"node '{self.name}' ({self.loc})"


@dataclass
class Graph:
    name: str
    inputs: list[Value] = field(default_factory=list)
    nodes: list[Node] = field(default_factory=list)
    outputs: list[Value] = field(default_factory=list)
    sla_ms: float | None = None
    loc: SourceLoc | None = None
    indexes: dict = field(default_factory=dict)  # name -> VectorIndex
    tools: dict = field(default_factory=dict)  # callee name -> Python callable
    modules: dict = field(default_factory=dict)  # agentc.module name -> torch module or function
    # Shared by an agent and its branch bodies: node names are unique in the whole agent,
    # and the node count is bounded (a graph.py that loops forever stops with an error).
    node_names: dict = field(default_factory=dict)  # name -> SourceLoc of the node
    max_nodes: int = 50_000

    def all_nodes(self):
        """Nodes in order, branch bodies included (each after its `if`)."""
        for n in self.nodes:
            yield n
            if n.branches:
                for g in n.branches:
                    yield from g.all_nodes()
