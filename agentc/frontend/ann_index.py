"""Approximate search on the host: a FAISS index over a VectorIndex's embeddings.

The index is the one the user brought when it is approximate (HNSW, IVF), else an HNSW
graph (inner product, M = 32) built here once and cached by the embeddings' digest. At
compile time it is measured: its latency per query (which the placer charges the host op)
and its recall@k against exact search on queries near the corpus, which the compile log
prints: approximate search trades recall for time, and the user should see the rate.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass

import numpy as np

HNSW_M, HNSW_EF_CONSTRUCTION, HNSW_EF_SEARCH = 32, 64, 64


@dataclass(frozen=True)
class AnnMeasure:
    kind: str  # the FAISS index type
    latency_ms: float  # median per query, one query at a time
    recall: float  # recall@k against exact search


def index_bytes(index) -> bytes:
    """The serialised FAISS index for `index` (a VectorIndex), built or read once."""
    import faiss

    from agentc import store

    path = index.embeddings_path
    if path is not None and path.suffix.lower() in (".faiss", ".index"):
        brought = faiss.read_index(str(path))
        if not isinstance(brought, (faiss.IndexFlat, faiss.IndexFlatIP, faiss.IndexFlatL2)):
            return faiss.serialize_index(brought).tobytes()
    emb = np.ascontiguousarray(index.embeddings, np.float32)
    key = {"ann": "hnsw", "m": HNSW_M, "ef": HNSW_EF_CONSTRUCTION, "embeddings": _digest(emb)}

    def build() -> bytes:
        hnsw = faiss.IndexHNSWFlat(emb.shape[1], HNSW_M, faiss.METRIC_INNER_PRODUCT)
        hnsw.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        hnsw.add(emb)
        return faiss.serialize_index(hnsw).tobytes()

    return store.cached_bytes("ann", key, build, ".faiss")


def load(data: bytes):
    """A FAISS index from its bytes, with agentc's search breadth for HNSW."""
    import faiss

    idx = faiss.deserialize_index(np.frombuffer(data, np.uint8))
    if isinstance(idx, faiss.IndexHNSW):
        idx.hnsw.efSearch = HNSW_EF_SEARCH
    return idx


def search(idx, query: np.ndarray, k: int) -> np.ndarray:
    """(1, k) int32 passage indices for a (1, D) query."""
    _, found = idx.search(np.ascontiguousarray(query, np.float32).reshape(1, -1), k)
    return found.astype(np.int32)


@functools.cache
def measure(data: bytes, k: int, n_queries: int = 100) -> AnnMeasure:
    """Latency per query and recall@k against exact inner-product search, on corpus
    vectors with noise as queries (their exact neighbours are nearby passages)."""
    import faiss

    idx = load(data)
    corpus = idx.reconstruct_n(0, idx.ntotal) if idx.ntotal else np.zeros((0, idx.d), np.float32)
    rng = np.random.default_rng(0)
    picks = rng.choice(idx.ntotal, size=min(n_queries, idx.ntotal), replace=False)
    queries = corpus[picks] + rng.normal(0, 0.05, (len(picks), idx.d)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    exact = faiss.IndexFlatIP(idx.d)
    exact.add(corpus)
    kk = min(k, idx.ntotal)
    _, want = exact.search(queries, kk)
    times, hits = [], 0
    for q, w in zip(queries, want):
        t0 = time.perf_counter()
        got = search(idx, q[None], kk)
        times.append(time.perf_counter() - t0)
        hits += len(set(got[0].tolist()) & set(w.tolist()))
    return AnnMeasure(type(idx).__name__, float(np.median(times)) * 1e3, hits / (kk * len(queries)))


def _digest(a: np.ndarray) -> str:
    import hashlib

    return hashlib.sha256(a.reshape(-1).view(np.uint8).data).hexdigest()
