"""Models that live in directories: a path, a name registered for a path, or a name found
on the `AGENTC_MODELS` search path (directories of model directories, separated by ':').

A directory model's registry name is what kernel symbols and weight groups derive from, so
it must be stable and free of '/': a registered or search-path name as given, a path's
directory name plus a short hash of its absolute location.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

_REGISTERED: dict[str, Path] = {}
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def is_model_dir(p: Path) -> bool:
    """A Hugging Face directory (config.json) or one holding a GGUF file."""
    return (p / "config.json").is_file() or (p.is_dir() and any(p.glob("*.gguf")))


def register(name: str, path: str | os.PathLike) -> None:
    """Make `name` stand for the model directory at `path` in this process."""
    if not _NAME.fullmatch(name):
        raise ValueError(f"model name {name!r}: use letters, digits, '_', '.' and '-' (no '/' or '@')")
    p = Path(path).expanduser().resolve()
    if not is_model_dir(p):
        raise ValueError(f"{p / 'config.json'}: no such file, and no .gguf file in {p} (register a model directory)")
    _REGISTERED[name] = p


def search_path() -> list[Path]:
    return [Path(d).expanduser() for d in os.environ.get("AGENTC_MODELS", "").split(os.pathsep) if d]


def resolve(name: str) -> tuple[str, Path] | None:
    """(registry name, directory) for a registered name, a search-path name or a directory
    path; None if `name` is none of them."""
    if name in _REGISTERED:
        return name, _REGISTERED[name]
    if _NAME.fullmatch(name):
        for d in search_path():
            if is_model_dir(d / name):
                return name, (d / name).resolve()
    p = Path(name).expanduser()
    if is_model_dir(p):
        p = p.resolve()
        tag = hashlib.sha256(str(p).encode()).hexdigest()[:8]
        return f"{re.sub(r'[^A-Za-z0-9_.-]', '_', p.name)}-{tag}", p
    return None


def listed() -> list[tuple[str, Path, str]]:
    """(name, directory, where from) for every registered and search-path model."""
    out = [(n, p, "registered") for n, p in sorted(_REGISTERED.items())]
    for d in search_path():
        if d.is_dir():
            out += [(p.name, p.resolve(), f"AGENTC_MODELS ({d})") for p in sorted(d.iterdir())
                    if is_model_dir(p)]
    return out
