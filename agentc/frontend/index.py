"""A vector index over a text corpus: one passage per non-empty line of a file.

The corpus is embedded when the agent is compiled (index building is offline work); the
embedding matrix becomes the index's weights, resident on whichever device runs the search.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path

import numpy as np

from agentc.disk_cache import cached_array
from agentc.frontend.graph import AgentError
from agentc.models import registry


class VectorIndex:
    def __init__(self, name: str, path: str | Path, encoder: str = "tiny-encoder"):
        from agentc.frontend.ops import caller_loc

        loc = caller_loc()
        self.name, self.encoder = name, encoder
        self.path = Path(path)
        if not self.path.is_absolute():
            caller = Path(sys._getframe(1).f_code.co_filename).resolve().parent
            self.path = caller / self.path
        if not self.path.is_file():
            raise AgentError(f"{loc}: VectorIndex '{name}': corpus file not found: {self.path}")
        self.passages = [ln.strip() for ln in self.path.read_text().splitlines() if ln.strip()]
        if not self.passages:
            raise AgentError(f"{loc}: VectorIndex '{name}': corpus {self.path} has no passages")
        registry.encoder(encoder)

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
