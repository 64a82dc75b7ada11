"""`agentc cache verify | gc | clear`: checking and trimming the content-addressed store
(agentc/store.py) as a whole."""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from agentc.store import _memo_path, cache_dir, evict, hash_files

LEGACY = ("exports", "index", "params", "tokenizers", "vmfb", "weights", "codegen")  # before the store


@dataclass
class Report:
    objects: int = 0
    bytes: int = 0
    corrupt: list[str] = field(default_factory=list)
    removed: int = 0
    freed: int = 0
    refs: int = 0

    def line(self) -> str:
        return (f"{self.objects} objects ({self.bytes / 1e6:.1f} MB), {self.refs} refs; "
                f"{len(self.corrupt)} corrupt; removed {self.removed} files ({self.freed / 1e6:.1f} MB)")


def _objects() -> list[Path]:
    root = cache_dir() / "objects"
    return sorted(p for p in root.glob("*/*") if p.is_file()) if root.is_dir() else []


def _refs() -> list[Path]:
    root = cache_dir() / "refs"
    return sorted(p for p in root.glob("*/*") if p.is_file()) if root.is_dir() else []


def verify(full: bool = False) -> Report:
    """Hash every object (with `full`, ignoring the memo); corrupt ones are evicted, and
    refs to them dropped, so the next compile rebuilds them."""
    rep = Report()
    objs = _objects()
    shas = hash_files(objs, memo=not full)
    for obj, sha in zip(objs, shas):
        rep.objects += 1
        rep.bytes += obj.stat().st_size
        if not obj.name.startswith(sha):
            rep.corrupt.append(str(obj))
            rep.freed += obj.stat().st_size
            evict(obj)
            rep.removed += 1
    _drop_dangling(rep)
    return rep


def _drop_dangling(rep: Report) -> set[str]:
    """Remove refs whose object is gone; returns the object names still referenced."""
    live = set()
    for ref in _refs():
        try:
            name = ref.read_text().strip()
        except OSError:
            continue
        if (cache_dir() / "objects" / name[:2] / name).is_file():
            live.add(name)
            rep.refs += 1
        else:
            ref.unlink(missing_ok=True)
            rep.removed += 1
    return live


def gc(older_than_days: float | None = None) -> Report:
    """Remove what nothing uses: refs unused for `older_than_days` (when given), objects no
    ref names, memo entries of files that changed or are gone, temporary files of writes
    that did not finish (older than an hour), and an older agentc's cache folders."""
    rep = Report()
    now = time.time()
    if older_than_days is not None:
        for ref in _refs():
            if now - ref.stat().st_mtime > older_than_days * 86400:
                ref.unlink(missing_ok=True)
                rep.removed += 1
    live = _drop_dangling(rep)
    for obj in _objects():
        size = obj.stat().st_size
        if obj.name in live:
            rep.objects += 1
            rep.bytes += size
        else:
            obj.unlink(missing_ok=True)
            rep.removed += 1
            rep.freed += size
    memo = cache_dir() / "verified"
    for entry in memo.glob("*") if memo.is_dir() else []:
        try:
            _, path = entry.read_text().split("\n")[:2]
            alive = _memo_path(os.stat(path)) == entry
        except (OSError, ValueError):
            alive = False
        if not alive:
            entry.unlink(missing_ok=True)
            rep.removed += 1
    for tmp in (cache_dir() / "tmp").glob("*") if (cache_dir() / "tmp").is_dir() else []:
        if now - tmp.stat().st_mtime > 3600:
            shutil.rmtree(tmp, ignore_errors=True)
            rep.removed += 1
    for name in LEGACY:  # an older agentc's cache layout: never read again
        old = cache_dir() / name
        if old.is_dir():
            files = [f for f in old.rglob("*") if f.is_file()]
            rep.removed += len(files)
            rep.freed += sum(f.stat().st_size for f in files)
            shutil.rmtree(old, ignore_errors=True)
    return rep


def clear() -> Report:
    """Remove the whole cache directory."""
    rep = Report()
    root = cache_dir()
    if root.is_dir():
        for p in root.rglob("*"):
            if p.is_file():
                rep.removed += 1
                rep.freed += p.stat().st_size
        shutil.rmtree(root)
    return rep
