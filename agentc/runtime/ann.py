"""A build's approximate-search indexes (FAISS files under indexes/), each read on the
first search that needs it and then shared by every request of the session."""

from __future__ import annotations

import threading
from pathlib import Path

from agentc.runtime.host_ops import BuildError


class AnnIndexes:
    def __init__(self, build_dir: Path, files: dict[str, str]):
        self.dir, self.files = Path(build_dir), files
        self._loaded: dict = {}
        self._lock = threading.Lock()

    def __getitem__(self, name: str):
        with self._lock:
            if name not in self._loaded:
                from agentc.frontend import ann_index

                path = self.dir / self.files[name]
                try:
                    self._loaded[name] = ann_index.load(path.read_bytes())
                except (OSError, RuntimeError) as e:
                    raise BuildError(f"{path}: cannot read the approximate-search index ({e}); "
                                     f"recompile the agent") from None
            return self._loaded[name]
