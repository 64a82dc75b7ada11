"""Where in the user's graph.py a traced call was made: every node and error names it."""

from __future__ import annotations

import functools
import sys
from pathlib import Path

from agentc.frontend.graph import SourceLoc

_PKG_DIR = str(Path(__file__).resolve().parents[1])


def caller_loc() -> SourceLoc:
    """The first frame outside agentc: the user's graph.py line. (Walks raw frames:
    inspect.stack() reads the source of every frame, which dominated warm compiles.)"""
    frame = sys._getframe(1)
    while frame is not None:
        filename = frame.f_code.co_filename
        if filename.startswith("<") or not _inside_agentc(filename):
            return SourceLoc(Path(filename).name, frame.f_lineno)
        frame = frame.f_back
    return SourceLoc("<unknown>", 0)


@functools.cache
def _inside_agentc(filename: str) -> bool:
    return str(Path(filename).resolve()).startswith(_PKG_DIR)
