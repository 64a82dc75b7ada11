"""Tools recorded into the build, so that the runtime never runs graph.py again.

A build must run wherever it is copied, from its own files only (on another machine, in a
Ray worker). Its tools are therefore written at compile time into `tools.pkl`, one entry
per tool name: functions defined in graph.py (lambdas and functools.partial too) by value
with cloudpickle; functions of importable modules by reference (their import path), so a
tool that wraps a client library records only its name. The file is listed in the build's
manifest and verified before it is loaded, like every other file of the build.
"""

from __future__ import annotations

import pickle
from pathlib import Path

from agentc.frontend.graph import AgentError

TOOLS_FILE = "tools.pkl"


def record_tools(tools: dict, where: dict[str, str]) -> bytes:
    """The pickled {tool name: callable}; `where` names each tool's first node (file:line)
    for errors."""
    import cloudpickle

    for name, fn in sorted(tools.items()):
        try:
            cloudpickle.dumps(fn)
        except Exception as e:  # noqa: BLE001 - whatever the tool's closure holds
            raise AgentError(f"{where.get(name, name)}: tool '{name}' cannot be recorded into the build "
                             f"({type(e).__name__}: {e}); a tool may only capture values that pickle: "
                             "keep clients, locks and files in a module it imports") from None
    return cloudpickle.dumps(dict(sorted(tools.items())))


def load_tools(path: Path) -> dict:
    """{tool name: callable} from a build's tools.pkl (already verified against the
    manifest: loading a pickle runs code, as graph.py did)."""
    with open(path, "rb") as f:
        tools = pickle.load(f)
    if not isinstance(tools, dict):
        raise TypeError(f"expected a mapping of tool names, got {type(tools).__name__}")
    return tools
