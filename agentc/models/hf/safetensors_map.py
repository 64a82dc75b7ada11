"""Safetensors files read by memory-mapping: a tensor is a view into the mapped file.

The format is an 8-byte little-endian header length, a JSON header naming each tensor's
dtype, shape and byte range, then the data. Reading it ourselves (rather than through a
framework) gives NumPy views of the mapped file: a 2 GB checkpoint costs no copy until a
tensor is converted, and then only that tensor.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

_DTYPES = {"F32": np.float32, "F16": np.float16, "BF16": np.uint16, "F64": np.float64,
           "I64": np.int64, "I32": np.int32, "I16": np.int16, "I8": np.int8, "U8": np.uint8, "BOOL": np.bool_}


class SafetensorsError(ValueError):
    pass


@dataclass(frozen=True)
class Entry:
    file: Path
    dtype: str  # the file's dtype name: F32, BF16, ...
    shape: tuple[int, ...]
    start: int  # byte offset of the data in the file
    end: int


def read_header(path: Path) -> dict[str, Entry]:
    """The tensors of one .safetensors file, without reading their data."""
    try:
        with open(path, "rb") as f:
            raw = f.read(8)
            if len(raw) < 8:
                raise SafetensorsError(f"{path}: not a safetensors file (shorter than its header)")
            (n,) = struct.unpack("<Q", raw)
            size = path.stat().st_size
            if n > size - 8:
                raise SafetensorsError(f"{path}: not a safetensors file (header of {n} bytes in a {size}-byte file)")
            header = json.loads(f.read(n))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as e:
        raise SafetensorsError(f"{path}: unreadable safetensors header ({e})") from None
    base = 8 + n
    out = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        if meta.get("dtype") not in _DTYPES:
            raise SafetensorsError(f"{path}: tensor '{name}' has dtype {meta.get('dtype')}, not one of "
                                   f"{', '.join(_DTYPES)}")
        start, end = meta["data_offsets"]
        out[name] = Entry(path, meta["dtype"], tuple(meta["shape"]), base + start, base + end)
    return out


class TensorMap:
    """Every tensor of a checkpoint's safetensors files, by name, memory-mapped lazily."""

    def __init__(self, files: list[Path]):
        self.entries: dict[str, Entry] = {}
        for f in files:
            self.entries.update(read_header(f))
        self._maps: dict[Path, np.memmap] = {}

    def __contains__(self, name: str) -> bool:
        return name in self.entries

    def raw(self, name: str) -> np.ndarray:
        """The tensor as stored (bf16 as uint16), a read-only view of the mapped file."""
        e = self.entries[name]
        m = self._maps.get(e.file)
        if m is None:
            m = self._maps[e.file] = np.memmap(e.file, dtype=np.uint8, mode="r")
        dtype = np.dtype(_DTYPES[e.dtype])
        want = int(np.prod(e.shape, dtype=np.int64)) * dtype.itemsize
        if e.end - e.start != want or e.end > m.size:
            raise SafetensorsError(f"{e.file}: tensor '{name}' spans {e.end - e.start} bytes, its shape "
                                   f"{list(e.shape)} and dtype {e.dtype} need {want}")
        return m[e.start:e.end].view(dtype).reshape(e.shape)

    def f32(self, name: str) -> np.ndarray:
        """The tensor as float32: a view when stored as f32, else one converted copy."""
        e, a = self.entries[name], self.raw(name)
        if e.dtype == "BF16":
            return (a.astype(np.uint32) << 16).view(np.float32)
        return a if a.dtype == np.float32 else a.astype(np.float32)
