"""agentc: compile AI agents into operators placed across heterogeneous devices.

Write an agent as plain Python over symbolic values (`@agentc.agent`, `agentc.llm`, ...),
compile it (`agentc.compile`), and run it (`agentc.load(build).run(...)`).
"""

from agentc.frontend.graph import AgentError
from agentc.frontend.index import VectorIndex
from agentc.frontend.ops import (
    cond,
    contains,
    embed,
    fanout,
    format,
    join,
    llm,
    passages,
    rerank,
    tokenize,
    tool,
    vector_search,
)
from agentc.frontend.torch_module import module
from agentc.frontend.trace import agent

__all__ = [
    "AgentError", "VectorIndex", "agent", "compile", "cond", "contains", "embed", "fanout",
    "format", "join", "llm", "load", "module", "passages", "place", "rerank", "tokenize", "tool", "vector_search",
]

_OPS = set(__all__)


def compile(graph_path, out_dir=None, **options):
    """Compile graph.py into a build directory; see `agentc.compiler.CompileOptions`."""
    import dataclasses

    from agentc.compiler import CompileOptions, compile_file

    _known_options("agentc.compile", options, [f.name for f in dataclasses.fields(CompileOptions)])
    return compile_file(graph_path, out_dir, CompileOptions(**options))


def _known_options(where: str, options: dict, known: list[str]) -> None:
    import difflib

    for k in options:
        if k not in known:
            near = difflib.get_close_matches(k, known, n=1)
            hint = f"did you mean '{near[0]}'? " if near else ""
            raise AgentError(f"{where}: unknown option '{k}' ({hint}known: {', '.join(known)})")


def place(graph_path, cluster=None, sla_ms=None, objective="tco", time_limit_s=5.0, arrival_rate=None,
          **options):
    """Place graph.py's operators on a cluster (a cluster.yaml path, a list of local device
    kinds, or None for this machine) without compiling; returns a `Placement` with
    per-operator device/start/end, transfers, predicted latency, cost per request,
    utilisation, solver status, lower bound and gap (`.table()`, `.to_json()`)."""
    from agentc.compiler import place_file

    _known_options("agentc.place", options, ["agent", "strict_sla", "quiet", "max_nodes"])
    return place_file(graph_path, cluster, sla_ms, objective, time_limit_s, arrival_rate, **options)


def load(build_dir, **options):
    """Load a build directory into a runtime session: `session.run({"query": ...})`."""
    import inspect

    from agentc.runtime.host_ops import InputError
    from agentc.runtime.session import Session

    known = [p for p in inspect.signature(Session).parameters if p != "build_dir"]
    try:
        _known_options("agentc.load", options, known)
    except AgentError as e:
        raise InputError(str(e)) from None
    return Session(build_dir, **options)


def __getattr__(name):
    import importlib

    try:  # a submodule (agentc.models.kernels, ...) is not an op
        return importlib.import_module(f"agentc.{name}")
    except ModuleNotFoundError as e:
        if e.name != f"agentc.{name}":
            raise
    from agentc.frontend.source import caller_loc

    raise AgentError(f"{caller_loc()}: unknown op 'agentc.{name}' (known: {', '.join(sorted(_OPS))})")
