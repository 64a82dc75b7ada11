"""One device's share of a plan, in a long-lived Ray actor on a node that has the device.

The actor holds its module and only its own weights (the archives its module reads), opened
through the runtime's own `Device` (one HAL device, driven from one thread). Values it
produces stay in it, on the device, under integer keys; the driver passes keys back to
use them, asks for a value (`fetch`, a NumPy array into the object store) when the host or
another node needs it, and frees keys once nothing reads them.

Files reach the node through the object store, never a shared filesystem: the driver sends
each file the node's cache lacks in chunks; the actor writes it to `<node cache>/node-files/
<sha256>`, checks the hash, and opens it from there. A node keeps the files for later
sessions (a re-placement that lands here again opens them at once).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

FILES_DIR = "node-files"


def _files_dir() -> Path:
    from agentc import store

    return store.cache_dir() / FILES_DIR


class DeviceActor:
    """Created by `remote_device.RemoteDevice` with `ray.remote(DeviceActor).options(...)`."""

    def __init__(self, name: str | None = None, runtime: str | None = None, driver: str | None = None):
        """Without a name: a spare, started ahead on a node so that a re-placement need not
        wait for a worker process (~1 s here); `open` makes it a device."""
        self.name, self.runtime, self.driver = name, runtime, driver
        import iree.runtime  # noqa: F401 - what `open` needs (~0.5 s), imported while nothing waits

        import agentc.models.irpa
        import agentc.runtime.device  # noqa: F401

        self.device = None
        self.values: dict[int, object] = {}
        self.failed: dict[int, str] = {}
        self.partial: dict[str, object] = {}  # sha -> open temporary file being received

    def about(self) -> dict:
        """Versions and whereabouts, checked against the driver's."""
        import ray

        return {"ray": ray.__version__, "agentc": _agentc_version(),
                "pid": os.getpid(), "node_id": ray.get_runtime_context().get_node_id(),
                "ip": ray.util.get_node_ip_address(),
                "files": str(_files_dir())}

    # -- files ------------------------------------------------------------------------
    def missing(self, names: list[str]) -> list[str]:
        """Those of `names` (`<sha256>.<ext>`: IREE opens archives by extension) this node
        does not hold, verified, yet."""
        from agentc import store

        out = []
        for name in names:
            path = _files_dir() / name
            if not path.is_file() or store.verified_sha256(path) != name.partition(".")[0]:
                out.append(name)
        return out

    def receive(self, name: str, chunk, last: bool) -> None:
        """Append one chunk of the file `name`; on the last, check its hash and keep it."""
        from agentc import store

        sha = name.partition(".")[0]
        d = _files_dir()
        d.mkdir(parents=True, exist_ok=True)
        f = self.partial.get(name)
        if f is None:
            f = self.partial[name] = open(d / f".{sha}.{os.getpid()}.part", "wb")  # noqa: SIM115 - spans calls
        f.write(memoryview(chunk))
        if not last:
            return
        f.close()
        del self.partial[name]
        tmp = Path(f.name)
        got = store.file_sha256(tmp)
        if got != sha:
            tmp.unlink(missing_ok=True)
            raise ValueError(f"a file sent to device '{self.name}' arrived damaged (sha256 {got[:12]}, "
                             f"expected {sha[:12]})")
        tmp.chmod(0o444)
        tmp.replace(d / name)
        store.remember(d / name, sha)

    def open(self, module: str, weights: list[str], name: str, runtime: str, driver: str | None) -> list[str]:
        """Open the device with its module and weights (from this node's files); returns
        the module's function names."""
        from agentc.models.irpa import load_index
        from agentc.runtime.device import Device

        self.name, self.runtime, self.driver = name, runtime, driver
        d = _files_dir()
        index = load_index(*(d / w for w in weights)) if weights else None
        self.device = Device(self.name, self.runtime, (d / module).read_bytes(), index, self.driver)
        return self.device.on_thread(_functions, self.device)

    # -- calls ------------------------------------------------------------------------
    def call(self, fn: str, spec: list, keys: list[int], freed: list[int], send: list[int],
             *moved) -> tuple[float, float, dict]:
        """Run `fn`, keeping its results under `keys` (chosen by the driver, so that it can
        queue the next call without waiting for this one). `spec`: per argument ("k", key)
        for a value held here, ("a", array) from the host, ("r", i) for `moved[i]` (an array
        from another node, resolved by Ray from the object store). Returns when it ran
        (time.time() seconds). A failure is kept for the keys: using or fetching them later
        raises it again (the driver hears of it too, from this call's result). `freed`:
        keys the driver let go of since its last call (none of them is this call's). `send`:
        the results (by position) to return with the call as arrays, {key: array}, for the
        host or another node to read without a `fetch` of their own; ("c", (i, key)) in
        `spec` takes such a result of another actor's call, `moved[i]`."""
        if freed:
            self.free(freed)
        try:
            args = []
            for tag, x in spec:
                if tag == "k" and x in self.failed:
                    raise RuntimeError(self.failed[x])
                args.append(self.values[x] if tag == "k" else moved[x] if tag == "r" else
                            moved[x[0]][2][x[1]] if tag == "c" else x)
            t0 = time.time()
            outs = self.device.on_thread(self.device.call, fn, args)
            t1 = time.time()
        except Exception as e:
            msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            for k in keys:
                self.failed[k] = f"{type(e).__name__}: {msg}"
            raise
        for k, o in zip(keys, outs):
            self.values[k] = o
        return t0, t1, {keys[i]: self.device.to_host(outs[i]) for i in send}

    def fetch(self, key: int) -> np.ndarray:
        if key in self.failed:
            raise RuntimeError(self.failed[key])
        if key not in self.values:
            raise RuntimeError("the value was never computed here: the call that makes it lost an input")
        return self.device.to_host(self.values[key])

    def free(self, keys: list[int]) -> None:
        for k in keys:
            self.failed.pop(k, None)
        gone = [self.values.pop(k) for k in keys if k in self.values]
        self.device.release(gone)

    def clock(self) -> float:
        return time.time()

    def held(self) -> int:
        return len(self.values)

    def close(self) -> None:
        self.values.clear()
        if self.device is not None:
            self.device.close()
            self.device = None


def _functions(device) -> list[str]:
    return list(device.main.function_names)


def _agentc_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("agentc")
    except PackageNotFoundError:
        return "unknown"
