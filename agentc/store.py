"""The content-addressed store behind agentc's cache: exported kernels, converted model
weights, tokenizers, index embeddings, IREE modules and the builds' weight archives.

Builds, concurrent compiles and long-lived sessions all read what the cache holds, so an
object that could change in place would change all of them at once (one build's truncated
archive corrupting every build of that model). So nothing in it is ever modified:

    objects/<aa>/<sha256><ext>   the bytes, named by their sha256; written once (temporary
                                 file, fsync, rename), then read-only
    refs/<kind>/<key hash>       which object a key (a hash of what determines the content:
                                 module text + compiler flags, model config + weights, ...)
                                 resolves to; a ref's mtime is its last use (for `gc`)
    verified/<identity hash>     memo: a file of this identity (device, inode, size, mtime,
                                 ctime) was hashed and holds this sha256

An object is hashed as it enters the store and verified whenever a ref resolves to it; one
that no longer matches its name is evicted and the caller builds it again. Verification
is cheap after the first time: a file is hashed once per identity. Writing a file in place
changes its mtime and ctime (and ctime cannot be set back), so a changed file is hashed
again; `verify --full` ignores the memo. File times tick coarsely (a few ms), so a file
changed within one tick of its last change could keep its identity: a memo is written only
for files whose ctime is RACY_NS old (as git treats "racily clean" index entries).

Builds get copies of objects, never hard links: a link shares the inode, and read-only
modes do not stop root (who runs agentc in CI and in most containers), so a build written
by root would change the cache and every other build of the same weights. ext4 has no
copy-on-write clones, so a copy costs disk; it also costs a read of the object, which is
where the copy is verified.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import BinaryIO

CHUNK = 16 << 20  # hashlib releases the GIL on chunks this size: files hash in parallel
RACY_NS = 50_000_000  # > the coarsest kernel file-time tick (10 ms at HZ=100)


class StoreError(RuntimeError):
    """The cache cannot be used (not writable, disk full); the message names the path."""


def cache_dir() -> Path:
    return Path(os.environ.get("AGENTC_CACHE", Path.home() / ".cache" / "agentc"))


def digest(key) -> str:
    """A stable hash of a JSON-serialisable key (or of a string as it is)."""
    text = key if isinstance(key, str) else json.dumps(key, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


# -- hashing, once per file identity -------------------------------------------------------
def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb", buffering=0) as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _identity(st: os.stat_result) -> str:
    return f"{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}"


def _memo_path(st: os.stat_result) -> Path:
    return cache_dir() / "verified" / digest(_identity(st))[:40]


def verified_sha256(path: Path, memo: bool = True) -> str:
    """sha256 of a file's bytes, hashed once per identity (the memo survives processes)."""
    st = os.stat(path)
    if memo:
        try:
            return _memo_path(st).read_text()[:64]
        except OSError:
            pass
    sha = file_sha256(path)
    if memo and _identity(os.stat(path)) == _identity(st):  # unchanged while hashed
        remember(path, sha, st)
    return sha


def remember(path: Path, sha: str, st: os.stat_result | None = None) -> bool:
    """Record that `path`, as it is now, holds `sha` (after the caller hashed what it wrote).
    Not for a file changed less than RACY_NS ago (returns False). A cache that cannot be
    written only costs hashing again next time."""
    try:
        st = st or os.stat(path)
        if time.time_ns() - st.st_ctime_ns < RACY_NS:
            return False
        _write_small(_memo_path(st), f"{sha}\n{Path(path).resolve()}\n")
        return True
    except OSError:
        return False


RACY_WAIT_BYTES = 8 << 20  # a racy file this large is worth waiting for (hashing it costs more)


def remember_all(items: dict[Path, str]) -> None:
    """remember() each {path: sha} just written: a build's files then load without being
    hashed again. Files changed less than RACY_NS ago get no memo (they are hashed at their
    first load) unless one is large: then the wait is worth it, and is made once."""
    stats = {p: os.stat(p) for p in items}
    racy = [st for st in stats.values() if time.time_ns() - st.st_ctime_ns < RACY_NS]
    if any(st.st_size >= RACY_WAIT_BYTES for st in racy):
        newest = max(st.st_ctime_ns for st in racy)
        time.sleep(max(0, RACY_NS - (time.time_ns() - newest)) / 1e9)
    for path, sha in items.items():
        remember(path, sha, stats[path])


def hash_files(paths: list[Path], memo: bool = True) -> list[str]:
    """verified_sha256 of each path, several at once (cold loads hash hundreds of MB)."""
    if len(paths) < 2:
        return [verified_sha256(p, memo) for p in paths]
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        return list(pool.map(lambda p: verified_sha256(p, memo), paths))


# -- writing -----------------------------------------------------------------------------
def _replace(dest: Path, fill: Callable[[BinaryIO], object], durable: bool = True) -> None:
    """Write `dest` atomically: `fill` writes a temporary file beside it (fsynced when
    `durable`), which then replaces it; a reader never sees half a file, and a write that
    fails or is interrupted leaves no temporary file behind."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            fill(f)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _write_small(path: Path, text: str) -> None:
    """A ref or memo entry: atomic, not fsynced (losing one only costs work again)."""
    _replace(path, lambda f: f.write(text.encode()), durable=False)


def write_file(path: Path, data: bytes) -> str:
    """Write `data` to `path` atomically and durably; returns its sha256 (for
    remember_all)."""
    _replace(path, lambda f: f.write(data))
    return hashlib.sha256(data).hexdigest()


def copy_file(src: Path, dest: Path, sha: str) -> None:
    """Copy `src` to `dest` atomically, hashing what is read; the copy is kept only if it
    holds `sha` (an object corrupted since it was last verified is not spread). The caller
    remembers it (remember_all)."""
    def fill(fout) -> None:
        h = hashlib.sha256()
        with open(src, "rb", buffering=0) as fin:
            while chunk := fin.read(CHUNK):
                h.update(chunk)
                fout.write(chunk)
        if h.hexdigest() != sha:
            raise CorruptObject(src)

    _replace(dest, fill)


class CorruptObject(Exception):
    def __init__(self, path: Path):
        super().__init__(f"{path}: does not hold the bytes it is named for")
        self.path = path


# -- the store ---------------------------------------------------------------------------
def _object_path(sha: str, ext: str) -> Path:
    return cache_dir() / "objects" / sha[:2] / f"{sha}{ext}"


def _ref_path(kind: str, key) -> Path:
    return cache_dir() / "refs" / kind / digest(key)[:40]


def _warn(msg: str) -> None:
    print(f"agentc: warning: {msg}", file=sys.stderr, flush=True)


def lookup(kind: str, key) -> Path | None:
    """The verified object `key` resolves to, or None (absent, or corrupt: then evicted)."""
    ref = _ref_path(kind, key)
    try:
        name = ref.read_text().strip()
    except OSError:
        return None
    obj = cache_dir() / "objects" / name[:2] / name
    sha = name[:64]
    try:
        ok = len(sha) == 64 and verified_sha256(obj) == sha
    except OSError:
        ok = False
    if not ok:
        if obj.exists():
            _warn(f"cache object {obj} is corrupt; evicted, it will be rebuilt")
        evict(obj)
        ref.unlink(missing_ok=True)
        return None
    try:
        os.utime(ref)  # last use, for gc
    except OSError:
        pass
    return obj


def evict(obj: Path) -> None:
    try:
        obj.unlink(missing_ok=True)
    except OSError as e:
        raise StoreError(f"{obj}: corrupt and cannot be removed ({e.strerror}); "
                         "run `agentc cache clear`") from None


def put_bytes(kind: str, key, data: bytes, ext: str = "") -> Path:
    """Store `data` under `key`; returns the object's path."""
    return put_with(kind, key, lambda tmp: tmp.write_bytes(data), ext)


def put_with(kind: str, key, write: Callable[[Path], object], ext: str = "") -> Path:
    """Store what `write(path)` writes under `key` (for writers that want a path: IREE's
    archive writer, numpy). The file is hashed from disk after fsync, so the object holds
    exactly what its name says."""
    tmpdir = cache_dir() / "tmp"
    try:
        tmpdir.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=tmpdir)) / f"object{ext}"
    except OSError as e:
        raise StoreError(f"{cache_dir()}: cache not writable ({e.strerror}); set AGENTC_CACHE") from None
    try:
        write(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        sha = file_sha256(tmp)
        obj = _object_path(sha, ext)
        obj.parent.mkdir(parents=True, exist_ok=True)
        # Already stored (by another compile, or under another key) if it verifies.
        if not (obj.exists() and verified_sha256(obj) == sha):
            evict(obj)
            os.chmod(tmp, 0o444)
            os.replace(tmp, obj)  # no memo yet: its ctime is too recent (RACY_NS)
        _write_small(_ref_path(kind, key), obj.name + "\n")
        return obj
    except OSError as e:
        raise StoreError(f"{cache_dir()}: cannot store a {kind} object ({e.strerror or e})") from None
    finally:
        shutil.rmtree(tmp.parent, ignore_errors=True)


def cached(kind: str, key, make: Callable[[Path], object], ext: str = "") -> Path:
    """The object for `key`, made by `make(path)` (which writes it) when absent or corrupt."""
    return lookup(kind, key) or put_with(kind, key, make, ext)


def cached_dir(kind: str, key, make: Callable[[Path], object]) -> Path:
    """The directory for `key`, filled by `make(path)` when absent: for what others read as
    a directory of files (a model directory converted from another format). It appears
    whole or not at all (filled beside it, then renamed)."""
    dest = cache_dir() / "dirs" / kind / digest(key)[:40]
    if dest.is_dir():
        return dest
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=".tmp-"))
    except OSError as e:
        raise StoreError(f"{cache_dir()}: cache not writable ({e.strerror}); set AGENTC_CACHE") from None
    try:
        make(tmp)
        try:
            os.replace(tmp, dest)
        except OSError:
            if not dest.is_dir():  # not another process's copy made meanwhile
                raise
        return dest
    except OSError as e:
        raise StoreError(f"{dest}: cannot store a {kind} directory ({e.strerror or e})") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def cached_bytes(kind: str, key, make: Callable[[], bytes], ext: str = "") -> bytes:
    obj = lookup(kind, key)
    if obj is not None:
        return obj.read_bytes()
    data = make()
    put_bytes(kind, key, data, ext)
    return data


def cached_array(kind: str, key, compute):
    """`compute()` (a NumPy array), remembered under `kind` by the hash of `key`."""
    import numpy as np

    obj = lookup(kind, key)
    if obj is not None:
        return np.load(obj)
    value = np.ascontiguousarray(compute())
    put_with(kind, key, lambda p: np.save(p, value), ".npy")
    return value
