"""A build's weights: one IREE parameter archive per owner, written once, linked many times.

The owner of a weight group is what produced it: a model (`smollm2-135m/l3` and
`smollm2-135m/embed` belong to `smollm2-135m`) or a vector index (`index:knowledge`). Each
owner's groups go into one `.irpa` archive, keys `<group>/<param>`, served to every device
under the parameter scope `agentc` (see agentc.models.irpa).

Archives are content-addressed: `cache_dir()/params/<sha256>.irpa`, the hash taken over
every key, shape, dtype and byte. A build hard-links the cached archive into its
`weights/` folder (copying only across file systems), so recompiling an unchanged agent
hashes its weights but writes none of them, and builds of one model share the disk.
Per-owner files also let a build of seeded random weights be re-created where the archive
itself cannot travel (`bench/gpu_models.py` regenerates the model archives on a GPU host
and checks them against these hashes).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from agentc.disk_cache import cache_dir
from agentc.models.irpa import write_irpa

WEIGHTS_DIR = "weights"


def owner(group: str) -> str:
    return group.split("/", 1)[0]


def file_name(owner_name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.@-]", "_", owner_name) + ".irpa"


def by_owner(groups: dict[str, dict[str, np.ndarray]]) -> dict[str, dict[str, dict[str, np.ndarray]]]:
    out: dict[str, dict[str, dict[str, np.ndarray]]] = {}
    for g, params in groups.items():
        out.setdefault(owner(g), {})[g] = params
    return out


def content_digest(groups: dict[str, dict[str, np.ndarray]]) -> str:
    """sha256 over keys, shapes, dtypes and bytes, in key order (hashlib releases the GIL,
    so owners hash in parallel)."""
    h = hashlib.sha256()
    for g in sorted(groups):
        for p in sorted(groups[g]):
            a = np.ascontiguousarray(groups[g][p])
            h.update(json.dumps([g, p, list(a.shape), a.dtype.str]).encode())
            h.update(a.reshape(-1).view(np.uint8).data)
    return h.hexdigest()


def write_build_weights(groups: dict[str, dict[str, np.ndarray]], out: Path) -> dict[str, dict]:
    """Place every owner's archive in `out/weights/`; stale archives of an earlier build
    of the directory are removed. Returns manifest entries `{relative path: {sha256,
    bytes, groups}}`; `sha256` is the content digest (what `content_digest` computes)."""
    owners = by_owner(groups)
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        digests = dict(zip(owners, pool.map(content_digest, owners.values())))
    wdir = out / WEIGHTS_DIR
    wdir.mkdir(parents=True, exist_ok=True)
    entries = {}
    for name, gs in sorted(owners.items()):
        cached = cache_dir() / "params" / f"{digests[name]}.irpa"
        if not cached.exists():
            write_irpa(cached, gs)
        dest = wdir / file_name(name)
        _link(cached, dest)
        entries[f"{WEIGHTS_DIR}/{dest.name}"] = {
            "sha256": digests[name], "bytes": sum(a.nbytes for ps in gs.values() for a in ps.values()),
            "groups": sorted(gs)}
    for stale in wdir.glob("*.irpa"):
        if f"{WEIGHTS_DIR}/{stale.name}" not in entries:
            stale.unlink()
    return entries


def _link(src: Path, dest: Path) -> None:
    """dest becomes the same file as src: a hard link, or a copy across file systems."""
    if dest.exists() and os.path.samefile(src, dest):
        return
    tmp = dest.with_name(f"{dest.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        os.link(src, tmp)
    except OSError:
        shutil.copyfile(src, tmp)
    tmp.replace(dest)
