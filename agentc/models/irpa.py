"""IREE parameter archives (.irpa): how model weights leave the compiler and reach devices.

Weights are never MLIR text. The build writes one archive holding every weight group, each
tensor under the key `<group>/<param>` (the same string as the `ml_program` global that
names it in the device modules), with shape/dtype metadata so tools can read
it back. The runtime maps the archive (`ParameterIndex.load`, mmap) and serves it to every
device through one provider under the scope `SCOPE`; device modules then name a weight as
`#flow.parameter.named<"agentc"::"<group>/<param>">`.

The same format caches converted real-model weights (GGUF -> fp32) so that a second
process loads them in a fraction of a second instead of re-running the conversion.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

SCOPE = "agentc"


def param_key(group: str, name: str) -> str:
    """The archive key of one weight: `<group>/<param>`."""
    return f"{group}/{name}"


def write_irpa(path: str | os.PathLike, groups: dict[str, dict[str, np.ndarray]]) -> Path:
    """Write `{group: {name: array}}` to one archive at `path` (atomically: a reader never
    sees a half-written file). Returns the path."""
    import iree.runtime as rt

    from agentc.models.half_weights import storable

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    index = rt.ParameterIndex()
    keep = []  # add_buffer borrows the memory until the archive is written
    for group, params in groups.items():
        for name, arr in params.items():
            arr = storable(np.ascontiguousarray(arr))
            keep.append(arr)
            rt.parameter_index_add_numpy_ndarray(index, param_key(group, name), arr)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    index.create_archive_file(str(tmp))
    tmp.chmod(0o644)  # IREE creates it 0640; builds are read by whoever runs them
    tmp.replace(path)
    return path


def load_index(*paths: str | os.PathLike):
    """One `ParameterIndex` over the archives, memory-mapped (nothing is read until used);
    None without archives. An unreadable archive raises ValueError naming it."""
    import iree.runtime as rt

    if not paths:
        return None

    index = rt.ParameterIndex()
    for path in paths:
        try:
            index.load(str(path))
        except (IndexError, RuntimeError, ValueError) as e:  # IREE's parser: truncated or not an archive
            raise ValueError(f"{path}: not a readable weights archive ({str(e).split('; ')[-1]})") from None
    return index


def read_irpa(path: str | os.PathLike, copy: bool = True) -> dict[str, dict[str, np.ndarray]]:
    """`{group: {name: array}}` back from an archive written by `write_irpa`. With
    copy=False the arrays view the mapped file (keep the returned dict alive while used)."""
    import iree.runtime as rt

    index = load_index(path)
    out: dict[str, dict[str, np.ndarray]] = {}
    for i in range(len(index)):
        entry = index[i]
        arr = rt.parameter_index_entry_as_numpy_ndarray(entry)
        group, name = entry.key.rsplit("/", 1)
        out.setdefault(group, {})[name] = np.array(arr, copy=True) if copy else arr
    return out
