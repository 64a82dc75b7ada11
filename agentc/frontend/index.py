"""A vector index over a text corpus: one passage per non-empty line of a file.

The corpus is embedded when the agent is compiled (index building is offline work); the
embedding matrix becomes the index's weights, resident on whichever device runs the search.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path

import numpy as np

from agentc.frontend.graph import AgentError
from agentc.frontend.source import caller_loc
from agentc.models import registry
from agentc.store import cached_array


class VectorIndex:
    def __init__(self, name: str, path: str | Path, encoder: str = "tiny-encoder"):
        loc = caller_loc()
        if not isinstance(name, str) or not name:
            raise AgentError(f"{loc}: VectorIndex: name must be a non-empty str, got {name!r}")
        if not isinstance(path, (str, Path)):
            raise AgentError(f"{loc}: VectorIndex '{name}': path must be a str or Path, got {type(path).__name__}")
        self.name, self.encoder = name, encoder
        self.path = Path(path)
        if not self.path.is_absolute():
            caller = Path(sys._getframe(1).f_code.co_filename).resolve().parent
            self.path = caller / self.path
        if not self.path.is_file():
            raise AgentError(f"{loc}: VectorIndex '{name}': corpus file not found: {self.path}")
        try:
            text = self.path.read_text(encoding="utf-8")
        except UnicodeDecodeError as e:
            raise AgentError(f"{loc}: VectorIndex '{name}': corpus {self.path} is not UTF-8 text "
                             f"(byte {e.start}: {e.reason})") from None
        except OSError as e:
            raise AgentError(f"{loc}: VectorIndex '{name}': cannot read corpus {self.path} ({e.strerror})") from None
        self.passages = [ln.strip() for ln in text.splitlines() if ln.strip()]
        if not self.passages:
            raise AgentError(f"{loc}: VectorIndex '{name}': corpus {self.path} has no passages")
        if not isinstance(encoder, str):
            raise AgentError(f"{loc}: VectorIndex '{name}': encoder must be a model name (str)")
        try:
            registry.encoder(encoder)
        except registry.UnknownModel as e:
            raise AgentError(f"{loc}: VectorIndex '{name}': {e.args[0] if e.args else e}") from None

    @functools.cached_property
    def embeddings(self) -> np.ndarray:
        """(N, D) float32, L2-normalised rows; cached on disk by corpus, model and weights."""
        import inspect

        enc = registry.encoder(self.encoder)
        key = {"passages": self.passages, "config": repr(enc.config), "weights": enc.weights_digest,
               "code": inspect.getsource(type(enc))}
        return cached_array("index", key, lambda: enc.embed_texts(self.passages))

    def lookup(self, indices) -> str:
        return "\n".join(self.passages[int(i)] for i in np.asarray(indices).ravel())
