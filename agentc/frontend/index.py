"""A vector index: passages, and their embeddings by the index's encoder.

The passages are a file (one per line, JSON lines or Parquet; agentc.frontend.index_files).
Their embeddings either come with them (`embeddings=`: a .npy matrix, memory-mapped, or a
FAISS index file), or the corpus is embedded when the agent is compiled (index building is
offline work, cached). With search="exact" (the default) the embedding matrix becomes the
index's weights, resident on whichever device runs the brute-force search; with
search="ann" a FAISS index on the host answers (agentc.frontend.ann_index); search="auto"
takes whichever the cost model says answers sooner (agentc.cost.search_choice).
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path

import numpy as np

from agentc.frontend.graph import AgentError
from agentc.frontend.index_files import IndexFileError, read_embeddings, read_passages
from agentc.frontend.source import caller_loc
from agentc.models import registry
from agentc.store import cached_array

# brute force on a device; approximate (FAISS) on the host; whichever the cost model
# says answers sooner (agentc.cost.search_choice), among approximate indexes with min_recall
SEARCHES = ("exact", "ann", "auto")


class VectorIndex:
    def __init__(self, name: str, path: str | Path, encoder: str = "tiny-encoder",
                 embeddings: str | Path | None = None, search: str = "exact", min_recall: float = 0.95):
        loc = caller_loc()
        if search not in SEARCHES:
            raise AgentError(f"{loc}: VectorIndex: search must be one of {', '.join(SEARCHES)}, got {search!r}")
        if isinstance(min_recall, bool) or not isinstance(min_recall, (int, float)) or not 0 <= min_recall <= 1:
            raise AgentError(f"{loc}: VectorIndex: min_recall must be a number in [0, 1], got {min_recall!r}")
        self.search, self.min_recall = search, float(min_recall)
        if not isinstance(name, str) or not name:
            raise AgentError(f"{loc}: VectorIndex: name must be a non-empty str, got {name!r}")
        if not isinstance(path, (str, Path)):
            raise AgentError(f"{loc}: VectorIndex '{name}': path must be a str or Path, got {type(path).__name__}")
        self.name, self.encoder = name, encoder
        caller = Path(sys._getframe(1).f_code.co_filename).resolve().parent
        self.path = caller / Path(path)  # an absolute path stays as it is
        if not self.path.is_file():
            raise AgentError(f"{loc}: VectorIndex '{name}': corpus file not found: {self.path}")
        try:
            self.passages = read_passages(self.path)
        except IndexFileError as e:
            raise AgentError(f"{loc}: VectorIndex '{name}': corpus {e}") from None
        self.embeddings_path = None if embeddings is None else caller / Path(embeddings)
        if self.embeddings_path is not None and not self.embeddings_path.is_file():
            raise AgentError(f"{loc}: VectorIndex '{name}': embeddings file not found: {self.embeddings_path}")
        if not self.passages:
            raise AgentError(f"{loc}: VectorIndex '{name}': corpus {self.path} has no passages")
        if not isinstance(encoder, str):
            raise AgentError(f"{loc}: VectorIndex '{name}': encoder must be a model name (str)")
        try:
            dim = registry.encoder(encoder).config.dim
        except registry.UnknownModel as e:
            raise AgentError(f"{loc}: VectorIndex '{name}': {e.args[0] if e.args else e}") from None
        if self.embeddings_path is not None:
            try:
                self.embeddings = read_embeddings(self.embeddings_path, len(self.passages), dim)
            except IndexFileError as e:
                raise AgentError(f"{loc}: VectorIndex '{name}': {e}") from None

    @functools.cached_property
    def embeddings(self) -> np.ndarray:
        """(N, D) float32, L2-normalised rows, embedded at compile time (unless given as a
        file: then the file's, set in __init__); cached on disk by corpus, model and weights."""
        import inspect

        enc = registry.encoder(self.encoder)
        key = {"passages": self.passages, "config": repr(enc.config), "weights": enc.weights_digest,
               "code": inspect.getsource(type(enc))}
        return cached_array("index", key, lambda: enc.embed_texts(self.passages))

    @functools.cached_property
    def ann_bytes(self) -> bytes:
        """The serialised FAISS index approximate search uses (agentc.frontend.ann_index),
        built or read once per index object."""
        from agentc.frontend import ann_index

        return ann_index.index_bytes(self)

    def lookup(self, indices) -> str:
        return "\n".join(self.passages[int(i)] for i in np.asarray(indices).ravel())
