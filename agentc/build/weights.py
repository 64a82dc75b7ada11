"""A build's weights: one IREE parameter archive per owner, stored once, copied into builds.

The owner of a weight group is what produced it: a model (`smollm2-135m/l3` and
`smollm2-135m/embed` belong to `smollm2-135m`) or a vector index (`index:knowledge`). Each
owner's groups go into one `.irpa` archive, keys `<group>/<param>`, served to every device
under the parameter scope `agentc` (see agentc.models.irpa).

Archives live in the content-addressed store (agentc.store), found by a digest over every
key, shape, dtype and byte, so recompiling an unchanged agent hashes its weights but
converts and writes none of them. A build gets its own verified copy in `weights/` (not a
link: a build must never share a writable inode with the cache, see agentc.store).
Per-owner files also let a build of seeded random weights be re-created where the archive
itself cannot travel (`experiments/rag-pipeline/gpu_models.py` regenerates the model archives on a GPU host
and checks them against these digests).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from agentc import store
from agentc.models import half_weights
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


def archives(groups: dict[str, dict[str, np.ndarray]]) -> dict[str, tuple[Path, str, dict]]:
    """Each owner's archive in the store, written if absent: {owner: (object path, content
    digest, its groups)}."""
    owners = by_owner(groups)
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        digests = dict(zip(owners, pool.map(content_digest, owners.values())))
    return {name: (store.cached("params", digests[name], lambda p, gs=gs: write_irpa(p, gs), ".irpa"),
                   digests[name], gs)
            for name, gs in sorted(owners.items())}


def write_build_weights(groups: dict[str, dict[str, np.ndarray]], out: Path) -> dict[str, dict]:
    """Copy every owner's archive into `out/weights/`; stale archives of an earlier build of
    the directory are removed. Returns manifest entries `{relative path: {sha256, bytes,
    groups, bf16_copies, stacked_copies, file_sha256}}`: `sha256` is the content digest
    (`content_digest`), `file_sha256` the archive file's, `bf16_copies` the groups that also
    hold bfloat16 copies of their weights (agentc.models.half_weights), `stacked_copies`
    the groups whose copies stack each layer's query, key and value weights
    (agentc.models.fused_projections; in bfloat16 for a group also in `bf16_copies`, else in
    float32): what a machine needs to make the same archive again from the model's weights."""
    wdir = out / WEIGHTS_DIR
    wdir.mkdir(parents=True, exist_ok=True)
    entries = {}
    for name, (obj, content, gs) in archives(groups).items():
        dest = wdir / file_name(name)
        sha = obj.name[:64]
        if not (dest.exists() and store.verified_sha256(dest) == sha):
            try:
                store.copy_file(obj, dest, sha)
            except store.CorruptObject:  # changed since it was verified: rebuild it once
                store.evict(obj)
                (obj, _, _), = archives(gs).values()
                store.copy_file(obj, dest, sha)
        entries[f"{WEIGHTS_DIR}/{dest.name}"] = {
            "sha256": content, "file_sha256": sha,
            "bytes": sum(a.nbytes for ps in gs.values() for a in ps.values()), "groups": sorted(gs),
            "bf16_copies": sorted(g for g, ps in gs.items() if any(p.endswith(half_weights.SUFFIX) for p in ps)),
            "stacked_copies": sorted(g for g, ps in gs.items() if any(half_weights.stacked(p) for p in ps))}
    for stale in wdir.glob("*.irpa"):
        if f"{WEIGHTS_DIR}/{stale.name}" not in entries:
            stale.unlink()
    return entries
