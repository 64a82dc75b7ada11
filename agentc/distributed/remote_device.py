"""A session's device whose module runs in a Ray actor (device_actor) on a node that has
it: the same interface as the in-process `runtime.device.Device`, so a session runs its one
dataflow executor over either.

Values stay in the actor (`Remote` handles name them); one that another node needs moves
actor to actor through the object store (`export_to` hands the consumer a `Moved` object
reference, resolved by Ray before the call runs), never through the driver or a file.
Host values go in with the call (inline when small, `ray.put` otherwise). Calls on one
device are serialised by its worker thread, as in-process; independent operators on
different devices overlap. A call that fails because its actor, node or an input's source
is gone raises `DeviceLost`, which the session answers by re-placing (recovery).
"""

from __future__ import annotations

import functools
import itertools
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from agentc.devices import KINDS
from agentc.distributed.node_spec import NODE, PREFIX
from agentc.runtime.device import DeviceThread
from agentc.runtime.host_ops import BuildError, DeviceLost, RunError

INLINE_BYTES = 100 * 1024  # larger host arrays go through ray.put (Ray inlines small arguments)
FREE_BATCH = 256  # released keys sent on their own once this many wait for a call
CHUNK_BYTES = 32 * 2**20  # files travel in chunks: an object store is capped at 512 MB
START_TIMEOUT_S = 120.0
PIN = 0.001  # resource asked per actor: pins it to a node with the device, consumes nothing real


@dataclass(frozen=True)
class Remote:
    """A value held by a device actor."""

    device: str
    key: int


@dataclass(frozen=True)
class Moved:
    """A value on its way from `src`'s actor to another: an object reference (a `fetch`'s,
    or with `key`, the call's that sends it)."""

    ref: object
    src: str
    key: int | None = None


@functools.cache
def _lost_errors() -> tuple:
    import ray.exceptions as rex

    names = ("RayActorError", "ActorDiedError", "ActorUnavailableError", "ObjectLostError", "OwnerDiedError",
             "ObjectFetchTimedOutError", "WorkerCrashedError", "NodeDiedError", "ObjectReconstructionFailedError")
    return tuple(getattr(rex, n) for n in names if hasattr(rex, n))


class RemoteDevice(DeviceThread):
    def __init__(self, name: str, runtime: str, node: str | None, driver: str | None = None, actor=None):
        """`actor`: a spare already running on `node` (spare_actor), else one is started."""
        super().__init__(name)
        self.name, self.kind, self.node, self.driver = name, KINDS[runtime], node, driver
        self.where = f"node {node}" if node else f"a node with agentc.{runtime}"
        self.actor = actor or spare_actor(node, runtime)
        self.functions: set[str] = set()
        self.info: dict = {}
        self.module_sha: str | None = None
        self.lost = False
        self._keys = itertools.count(1)
        self._pending: dict = {}  # call ref -> (report, when sent, source devices)
        self._to_free: list[int] = []  # keys released since the last call
        self._origin: dict[int, tuple[str, int]] = {}  # live key -> (function, result position)
        self._read: set[tuple[str, int]] = set()  # results read off the device: sent with their calls
        self._sent: dict[int, object] = {}  # key -> the call ref whose result carries it
        self._cv = threading.Condition()
        self._closing = False
        self._offset = 0.0  # this process's perf_counter() minus the actor's time.time()
        self._watcher = threading.Thread(target=self._watch, daemon=True, name=f"agentc-watch-{name}")
        self._watcher.start()

    # -- loading ----------------------------------------------------------------------
    def start(self, module, module_sha: str, weights: list[tuple[Path, str]]) -> None:
        """Check the actor's node, send it the files it lacks, open the device. `module`:
        the .vmfb (a path in the build, or bytes compiled for a new placement)."""
        import ray

        from agentc.distributed.device_actor import _agentc_version

        try:
            self.info = self._get(self.actor.about.remote(), START_TIMEOUT_S)
        except DeviceLost as e:  # the actor never started: the node cannot run agentc
            raise BuildError(f"device '{self.name}': {e}") from None
        mine = {"ray": ray.__version__, "agentc": _agentc_version()}
        for what in ("ray", "agentc"):
            if self.info[what] != mine[what]:
                raise BuildError(f"device '{self.name}' ({self._where()}): {what} {self.info[what]} there, "
                                 f"{mine[what]} here; install the same version on every node")
        files = [(module, f"{module_sha}.vmfb"), *((path, f"{sha}{path.suffix}") for path, sha in weights)]
        missing = set(self._get(self.actor.missing.remote([name for _, name in files]), START_TIMEOUT_S))
        for source, name in files:
            if name in missing:
                self._send(source, name)
        self.module_sha = module_sha
        try:
            names = self._get(self.actor.open.remote(files[0][1], [name for _, name in files[1:]], self.name,
                                                     self.kind.name, self.driver), START_TIMEOUT_S)
        except RunError as e:
            what = module.name if isinstance(module, Path) else "its module (compiled for a new placement)"
            raise BuildError(f"device '{self.name}' ({self._where()}) could not load {what}: {e}") from None
        self.functions = set(names)
        t0 = time.perf_counter()
        there = self._get(self.actor.clock.remote(), START_TIMEOUT_S)
        self._offset = (t0 + time.perf_counter()) / 2 - there

    def _send(self, source, name: str) -> None:
        """A file (or bytes) to the actor's node, in chunks through the object store, two
        in flight."""
        import ray

        data = np.frombuffer(source, dtype=np.uint8) if isinstance(source, bytes) else \
            np.memmap(source, dtype=np.uint8, mode="r") if source.stat().st_size else np.zeros(0, np.uint8)
        pending = None
        for offset in range(0, max(len(data), 1), CHUNK_BYTES):
            chunk = np.ascontiguousarray(data[offset:offset + CHUNK_BYTES])
            ref = self.actor.receive.remote(name, ray.put(chunk), offset + CHUNK_BYTES >= len(data))
            if pending is not None:
                self._get(pending, START_TIMEOUT_S)
            pending = ref
        self._get(pending, START_TIMEOUT_S)

    def _where(self) -> str:
        ip = self.info.get("ip")
        return f"{self.where}{', ' + ip if ip else ''}"

    def _get(self, ref, timeout: float | None = None):
        """ray.get, with a lost actor as DeviceLost and anything else as one line."""
        import ray

        try:
            return ray.get(ref, timeout=timeout)
        except _lost_errors() as e:
            self.lost = True
            raise DeviceLost(self.name, _why(e, self.name, self.where)) from None
        except ray.exceptions.GetTimeoutError:
            raise BuildError(f"device '{self.name}': no actor started on {self.where} within {timeout:.0f} s "
                             f"(is the node up, with agentc.{self.kind.name}?)") from None
        except ray.exceptions.RayTaskError as e:
            cause = e.cause if getattr(e, "cause", None) is not None else e
            first = str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__
            if isinstance(cause, _lost_errors()):
                raise DeviceLost(self.name, first) from None
            raise RunError(f"{type(cause).__name__}: {first}" if not isinstance(cause, RunError) else first) from None

    # -- the Device interface -----------------------------------------------------------
    def has_function(self, fn: str) -> bool:
        return fn in self.functions

    asynchronous = True  # `call` queues the call and returns its results' handles

    def call(self, fn: str, args: list, n_out: int | None = None, report=None) -> list:
        """Queue `fn` on the actor and return handles to its `n_out` results at once: Ray
        runs one caller's calls to an actor in the order they were sent, so the next call
        can follow without a round trip. `report(error, spans)` is called when it has run
        (from the watcher thread): spans are (track, start, end) in this process's clock, the
        call on this device's track, the wait for inputs from other nodes on theirs."""
        import ray

        spec, moved, sources = [], [], set()
        for a in args:
            if isinstance(a, Remote):
                spec.append(("k", a.key))
            elif isinstance(a, Moved):
                spec.append(("r", len(moved)) if a.key is None else ("c", (len(moved), a.key)))
                moved.append(a.ref)
                sources.add(a.src)
            else:
                arr = np.require(a, requirements="C")  # (keeps a 0-d array 0-d)
                if arr.nbytes > INLINE_BYTES:
                    spec.append(("r", len(moved)))
                    moved.append(ray.put(arr))
                else:
                    spec.append(("a", arr))
        keys = [next(self._keys) for _ in range(n_out or 1)]
        with self._cv:
            send = [i for i in range(len(keys)) if (fn, i) in self._read]
        ref = self.actor.call.remote(fn, spec, keys, self._take_freed(), send, *moved)
        with self._cv:
            self._pending[ref] = (report, time.perf_counter(), sorted(sources))
            for i, k in enumerate(keys):
                self._origin[k] = (fn, i)
            for i in send:
                self._sent[keys[i]] = ref
            self._cv.notify()
        return [Remote(self.name, k) for k in keys]

    def _sent_with_call(self, key: int):
        """The call whose result carries value `key`, if one does; else None, and calls of
        the same function send that result from now on (a value read once, the token a
        decode step samples, say, is read at every step)."""
        with self._cv:
            ref = self._sent.get(key)
            if ref is None and key in self._origin:
                self._read.add(self._origin[key])
            return ref

    def _watch(self) -> None:
        """Hears of calls as they end: reports their spans, or their failure."""
        import ray

        while True:
            with self._cv:
                while not self._pending and not self._closing:
                    self._cv.wait()
                if not self._pending:
                    return
                refs = list(self._pending)
            ready, _ = ray.wait(refs, num_returns=len(refs), timeout=0.05, fetch_local=True)
            for ref in ready:
                with self._cv:
                    report, sent, sources = self._pending.pop(ref)
                try:
                    start, end, _ = self._get(ref)
                except RunError as e:
                    if report is not None:
                        report(e, [])
                    continue
                if report is not None:
                    start, end = start + self._offset, end + self._offset
                    report(None, [(self.name, start, end)] +
                           [(f"{src} -> {self.name}", sent, max(sent, start)) for src in sources])

    def _pending_failure(self, timeout_s: float = 10.0) -> RunError | None:
        """The first failure among the calls still queued (a lost device first)."""
        import ray

        with self._cv:
            refs = list(self._pending)
        if not refs:
            return None
        ready, _ = ray.wait(refs, num_returns=len(refs), timeout=timeout_s)
        found = None
        for ref in ready:
            try:
                self._get(ref)
            except DeviceLost as e:
                return e
            except RunError as e:
                found = found or e
        return found

    def to_host(self, value: Remote) -> np.ndarray:
        ref = self._sent_with_call(value.key)
        try:
            if ref is not None:
                return np.array(self._get(ref)[2][value.key])
            return self._get(self.actor.fetch.remote(value.key))
        except DeviceLost:
            raise
        except RunError as e:  # a call before it failed: say why (a lost input first)
            raise self._pending_failure() or e from None

    def export_to(self, value: Remote, dest) -> Moved | None:
        """`value` for another device: straight from this actor to `dest`'s if it is remote
        too (None: the caller reads it back through the host)."""
        if isinstance(dest, RemoteDevice):
            ref = self._sent_with_call(value.key)
            if ref is not None:
                return Moved(ref, self.name, value.key)
            return Moved(self.actor.fetch.remote(value.key), self.name)
        return None

    def release(self, values: list) -> None:
        """Forget values: their keys go to the actor with the next call (a task of their
        own per release doubled the tasks of a decode loop), or on their own once
        `FREE_BATCH` wait."""
        keys = [v.key for v in values if isinstance(v, Remote)]
        values.clear()
        if not keys or self.lost:
            return
        with self._cv:
            for k in keys:
                self._origin.pop(k, None)
                self._sent.pop(k, None)
            self._to_free.extend(keys)
            if len(self._to_free) < FREE_BATCH:
                return
            keys, self._to_free = self._to_free, []
        self.actor.free.remote(keys)

    def _take_freed(self) -> list[int]:
        with self._cv:
            keys, self._to_free = self._to_free, []
        return keys

    def alive(self, timeout_s: float = 2.0) -> bool:
        import ray

        if self.lost:
            return False
        try:
            ray.get(self.actor.held.remote(), timeout=timeout_s)
            return True
        except Exception:  # noqa: BLE001 - dead, unreachable or stuck: not usable
            self.lost = True
            return False

    def close(self) -> None:
        import ray

        with self._cv:
            self._closing = True
            self._cv.notify()
        self._watcher.join(timeout=10)
        if not self.lost:
            try:
                ray.get(self.actor.close.remote(), timeout=10)
            except Exception:  # noqa: BLE001, S110 - closing what may already be gone
                pass
        try:
            ray.kill(self.actor, no_restart=True)
        except Exception:  # noqa: BLE001, S110 - killing what may already be gone
            pass
        self.worker.shutdown(wait=True)


def spare_actor(node: str | None, runtime: str | None = None):
    """A device actor not yet opened, on `node` (and, without a node, on one with
    `runtime`'s device)."""
    import ray

    from agentc.distributed.device_actor import DeviceActor

    resources = {**({PREFIX + runtime: PIN} if runtime else {}), **({NODE + node: PIN} if node else {})}
    return ray.remote(DeviceActor).options(num_cpus=0, resources=resources, max_restarts=0,
                                           max_task_retries=0).remote()


def _why(e, name: str, where: str) -> str:
    text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    if "No module named 'agentc'" in str(e):
        return f"{where} has no agentc package (install agentc there, the same version as here)"
    return f"device '{name}' on {where} is gone ({type(e).__name__}: {text[:200]})"
