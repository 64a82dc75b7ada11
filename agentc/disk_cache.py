"""The on-disk cache shared by exports, index embeddings and IREE modules.

Everything in it is keyed by a hash of what determines its content, so a stale entry is
never read, only left behind; writes go through a temporary file so that concurrent
compiles never see a half-written entry.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np


def cache_dir() -> Path:
    return Path(os.environ.get("AGENTC_CACHE", Path.home() / ".cache" / "agentc"))


def digest(key) -> str:
    """A stable hash of a JSON-serialisable key."""
    return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()


def write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def cached_array(kind: str, key, compute: Callable[[], np.ndarray]) -> np.ndarray:
    """`compute()`, remembered under cache_dir()/kind by the hash of `key`."""
    path = cache_dir() / kind / f"{digest(key)[:32]}.npy"
    if path.exists():
        return np.load(path)
    value = np.ascontiguousarray(compute())
    tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npy")
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(tmp, value)
    tmp.replace(path)
    return value
