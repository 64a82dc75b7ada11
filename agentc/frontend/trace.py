"""Load a graph.py file and trace its agents into `Graph`s.

The file runs as ordinary Python; functions decorated with `@agentc.agent` are traced by
calling them with one symbolic text value per parameter. A mistake in the file becomes an
`AgentError` that names the file and line, never a traceback.
"""

from __future__ import annotations

import runpy
import traceback
from pathlib import Path

from agentc.frontend import ops
from agentc.frontend.graph import TEXT, AgentError, Graph, SourceLoc, Value
from agentc.frontend.source import caller_loc


class AgentFunction:
    def __init__(self, fn, sla_ms: float | None, name: str | None):
        code = getattr(fn, "__code__", None)
        if code is None:
            raise AgentError(f"{caller_loc()}: @agentc.agent must decorate a function, got {type(fn).__name__}")
        self.loc = SourceLoc(Path(code.co_filename).name, code.co_firstlineno)
        if sla_ms is not None and (isinstance(sla_ms, bool) or not isinstance(sla_ms, (int, float))
                                   or not 0 < sla_ms < float("inf")):
            raise AgentError(f"{self.loc}: @agentc.agent: sla_ms must be a number > 0, got {sla_ms!r}")
        self.fn, self.sla_ms = fn, sla_ms
        self.name = name if name is not None else fn.__name__
        if not isinstance(self.name, str) or not ops.NODE_NAME.fullmatch(self.name):
            raise AgentError(f"{self.loc}: @agentc.agent: name={self.name!r}: an agent name is letters, "
                             "digits, '_', '.' and '-', starting with a letter or '_'")

    def __call__(self, *args, **kwargs):
        return self.fn(*args, **kwargs)

    def trace(self, max_nodes: int | None = None) -> Graph:
        import inspect

        g = Graph(self.name, sla_ms=self.sla_ms, loc=self.loc)
        if max_nodes is not None:
            g.max_nodes = max_nodes
        sig = inspect.signature(self.fn).parameters.values()
        odd = [p.name for p in sig if p.kind not in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
               or p.default is not p.empty]
        if odd:
            raise AgentError(f"{self.loc}: agent '{self.name}': parameter '{odd[0]}': an agent's inputs are "
                             "plain parameters (no defaults, *args or **kwargs), one text value each")
        params = [p.name for p in sig]
        g.inputs = [ops.TracedValue(None, i, TEXT, p) for i, p in enumerate(params)]
        ops._stack.append(g)
        try:
            out = self.fn(*g.inputs)
        finally:
            ops._stack.pop()
        outs = list(out) if isinstance(out, (tuple, list)) else [out]
        if not outs or not all(isinstance(o, Value) for o in outs):
            raise AgentError(f"{self.loc}: agent '{self.name}' must return agent values (text)")
        g.outputs = outs
        check_dependencies(g)
        return g


def check_dependencies(g: Graph) -> None:
    """`after=` names must exist, and data plus control dependencies must not cycle."""
    import networkx as nx

    nodes = {n.name: n for n in g.all_nodes()}
    dg = nx.DiGraph()
    for n in nodes.values():
        dg.add_node(n.name)
        for v in n.inputs:
            if v.node is not None:
                dg.add_edge(v.node.name, n.name)
        for dep in n.after:
            if dep not in nodes:
                raise AgentError(f"{n.loc}: node '{n.name}': after= names unknown node '{dep}'")
            dg.add_edge(dep, n.name)
    if not nx.is_directed_acyclic_graph(dg):
        cycle = [u for u, _ in nx.find_cycle(dg)]
        where = ", ".join(f"'{c}' ({nodes[c].loc})" for c in cycle)
        raise AgentError(f"{nodes[cycle[0]].loc}: cycle between nodes {where}")


def agent(fn=None, *, sla_ms: float | None = None, name: str | None = None):
    """Mark a function as an agent; `sla_ms` is its end-to-end latency target."""
    if fn is None:
        return lambda f: AgentFunction(f, sla_ms, name)
    return AgentFunction(fn, sla_ms, name)


def load_agents(path: str | Path) -> list[AgentFunction]:
    path = Path(path)
    if not path.is_file():
        raise AgentError(f"{path}: no such file")
    try:
        compile(path.read_text(encoding="utf-8"), str(path), "exec")
    except UnicodeDecodeError as e:
        raise AgentError(f"{path.name}: not UTF-8 text (byte {e.start}); Python source must be UTF-8") from None
    except SyntaxError as e:
        raise AgentError(f"{path.name}:{e.lineno}: syntax error: {e.msg}") from None
    try:
        ns = runpy.run_path(str(path), run_name="agentc_graph")
    except AgentError:
        raise
    except SystemExit as e:
        raise AgentError(f"{path.name}: the file called exit({e.code!r}) while loading") from None
    except Exception as e:  # noqa: BLE001 - the user's module failed at import time
        frames = [f for f in traceback.extract_tb(e.__traceback__) if Path(f.filename) == path.resolve() or f.filename == str(path)]
        line = frames[-1].lineno if frames else 0
        raise AgentError(f"{path.name}:{line}: {type(e).__name__}: {e}") from None
    agents = list({id(v): v for v in ns.values() if isinstance(v, AgentFunction)}.values())
    names = [a.name for a in agents]
    twice = next((n for n in names if names.count(n) > 1), None)
    if twice:
        raise AgentError(f"{path.name}: two agents are named '{twice}'; give one of them name=")
    if not agents:
        raise AgentError(f"{path.name}: no @agentc.agent function found")
    return agents


def trace_file(path: str | Path, agent_name: str | None = None, max_nodes: int | None = None) -> Graph:
    """Trace the agent of graph.py (`agent_name` picks one where the file has several)."""
    agents = load_agents(path)
    found = ", ".join(f"'{a.name}' ({a.loc})" for a in agents)
    if agent_name:
        picked = [a for a in agents if a.name == agent_name]
        if not picked:
            raise AgentError(f"{Path(path).name}: no agent named '{agent_name}' (found: {found})")
        fn = picked[0]
    elif len(agents) > 1:
        raise AgentError(f"{Path(path).name}: {len(agents)} agents ({found}); pick one with --agent NAME "
                         "(agent= in Python)")
    else:
        fn = agents[0]
    try:
        return fn.trace(max_nodes)
    except AgentError:
        raise
    except Exception as e:  # noqa: BLE001 - the user's agent body failed while tracing
        frames = [f for f in traceback.extract_tb(e.__traceback__) if Path(f.filename).name == Path(path).name]
        line = frames[-1].lineno if frames else fn.loc.line
        raise AgentError(f"{Path(path).name}:{line}: {type(e).__name__}: {e}") from None
