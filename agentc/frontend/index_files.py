"""Reading an index a user brings: passages (text lines, JSON lines, Parquet) and their
embeddings (a NumPy .npy matrix, memory-mapped, or a FAISS index file).

Each problem is one line naming the file (and line or field) at fault; nothing here
modifies the files.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


class IndexFileError(ValueError):
    pass


def read_passages(path: Path) -> list[str]:
    """Passages by file type: .jsonl (a JSON string per line, or an object with "text"),
    .parquet (column "text"), anything else UTF-8 text with one passage per line."""
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        try:
            import pyarrow.parquet as pq
        except ImportError:
            raise IndexFileError(f"{path}: reading Parquet needs pyarrow (pip install pyarrow)") from None
        table = pq.read_table(path)
        if "text" not in table.column_names:
            raise IndexFileError(f"{path}: no column 'text' (columns: {', '.join(table.column_names)})")
        return [str(t) for t in table.column("text").to_pylist()]
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise IndexFileError(f"{path}: not UTF-8 text (byte {e.start}: {e.reason})") from None
    except OSError as e:
        raise IndexFileError(f"{path}: cannot read ({e.strerror})") from None
    if suffix != ".jsonl":
        return [ln.strip() for ln in text.splitlines() if ln.strip()]
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            v = json.loads(line)
        except json.JSONDecodeError as e:
            raise IndexFileError(f"{path}:{n}: not JSON ({e.msg})") from None
        if isinstance(v, dict):
            v = v.get("text")
        if not isinstance(v, str):
            raise IndexFileError(f"{path}:{n}: expected a string or an object with a \"text\" string")
        out.append(v)
    return out


def read_embeddings(path: Path, rows: int, dim: int) -> np.ndarray:
    """(rows, dim) float32 embeddings: a memory-mapped .npy (float32 as is, float16
    converted), or the vectors stored in a FAISS index file (flat, HNSW or IVF-flat)."""
    if path.suffix.lower() in (".faiss", ".index"):
        a = _faiss_vectors(path)
    else:
        try:
            a = np.load(path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as e:
            raise IndexFileError(f"{path}: not a .npy matrix ({e})") from None
        if a.dtype == np.float16:
            a = a.astype(np.float32)
        elif a.dtype != np.float32:
            raise IndexFileError(f"{path}: embeddings are {a.dtype}, expected float32 (or float16)")
    if a.ndim != 2 or a.shape[1] != dim:
        raise IndexFileError(f"{path}: embeddings have shape {list(a.shape)}, the encoder gives {dim}-dim vectors")
    if a.shape[0] != rows:
        raise IndexFileError(f"{path}: {a.shape[0]} embeddings for {rows} passages")
    return a


def _faiss_vectors(path: Path) -> np.ndarray:
    try:
        import faiss
    except ImportError:
        raise IndexFileError(f"{path}: reading a FAISS index needs faiss-cpu (pip install faiss-cpu)") from None
    try:
        index = faiss.read_index(str(path))
    except RuntimeError as e:
        raise IndexFileError(f"{path}: not a readable FAISS index ({str(e).splitlines()[0]})") from None
    ivf = faiss.try_extract_index_ivf(index)  # None for flat and HNSW: they reconstruct as they are
    if ivf is not None:
        ivf.make_direct_map()  # an IVF index finds a vector by id only through this map
    try:
        return index.reconstruct_n(0, index.ntotal)
    except RuntimeError:
        raise IndexFileError(f"{path}: this FAISS index ({type(index).__name__}) does not store its vectors; "
                             f"give them as a .npy file") from None
