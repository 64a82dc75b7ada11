"""One HAL device of a session: its IREE module and parameters, driven from one thread."""

from __future__ import annotations

import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from agentc.devices import KINDS
from agentc.models.irpa import SCOPE
from agentc.runtime.host_ops import RunError


class DeviceThread:
    """A device's one worker thread: a session serialises each device's calls on it (and a
    request never waits on one device from another's)."""

    def __init__(self, name: str):
        self.worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"agentc-{name}")
        self._thread = self.worker.submit(threading.current_thread).result()

    def owns_thread(self) -> bool:
        """Is the caller this device's worker thread?"""
        return threading.current_thread() is self._thread

    def on_thread(self, fn, *args):
        """Run fn(*args) on this device's worker thread and return its result."""
        if self.owns_thread():
            return fn(*args)
        return self.worker.submit(fn, *args).result()


class Device(DeviceThread):
    """One HAL device and its module. Everything that touches the device (creating it,
    calls, readbacks, freeing its buffers, teardown) runs on its one worker thread: CUDA
    binds a context to the thread that created it, and IREE's CUDA allocator fails with
    CUDA_ERROR_INVALID_CONTEXT on any other thread."""

    def __init__(self, name: str, runtime: str, vmfb: bytes, weights, driver: str | None = None):
        super().__init__(name)
        self.name, self.kind, self._driver = name, KINDS[runtime], driver
        self.on_thread(self._open, vmfb, weights)

    def _open(self, vmfb: bytes, weights) -> None:
        """Opens the device and loads the module. A device lost while the module loads
        (lavapipe reported VK_ERROR_DEVICE_LOST once, from a fence wait during weight upload,
        on a loaded 2-core CI host) is opened afresh once: the Vulkan spec's recovery is a new
        logical device; a second loss is the caller's error."""
        try:
            self._load(vmfb, weights)
        except RuntimeError as e:
            if "DEVICE_LOST" not in str(e):
                raise
            print(f"agentc: {self.name}: the device was lost while its module loaded; opening it again",
                  file=sys.stderr)
            self._load(vmfb, weights)

    def _load(self, vmfb: bytes, weights) -> None:
        """`weights`: the build's ParameterIndex (memory-mapped archives). Module
        initialisation loads the parameters this device's globals name, and no others."""
        import iree.runtime as rt

        self.device = self.kind.create(self._driver)
        self.instance = rt.VmInstance()
        self.providers = [weights.create_provider(scope=SCOPE)] if weights is not None else []
        modules = [rt.create_hal_module(self.instance, self.device)]
        if self.providers:
            modules.append(rt.create_io_parameters_module(self.instance, *self.providers))
        self.main = rt.VmModule.copy_buffer(self.instance, vmfb)
        self.context = rt.VmContext(self.instance, modules=modules + [self.main])
        self.functions = {}
        self._staging = {}  # readback buffers by size, reused (see DeviceKind.to_host)

    asynchronous = False  # `call` returns once the call is done (remote_device's do not)

    def call(self, fn: str, args: list, n_out: int | None = None, report=None):
        """Run on the worker (the request submits it there). `n_out` and `report` are for
        devices whose calls end after `call` returns (remote_device)."""
        import iree.runtime as rt

        if fn not in self.functions:
            found = self.main.lookup_function(fn)
            if found is None:
                raise RunError(f"the {self.name} module has no function '{fn}': the module is not "
                               f"this build's; recompile the agent")
            self.functions[fn] = rt.FunctionInvoker(self.context, self.device, found)
        # Operands from the host or another device move in through the kind's transfer.
        args = [self.kind.upload(self.device, a) if isinstance(a, np.ndarray) else a for a in args]
        out = self.functions[fn](*args)
        return list(out) if isinstance(out, (tuple, list)) else [out]

    def has_function(self, fn: str) -> bool:
        return self.on_thread(self.main.lookup_function, fn) is not None

    def export_to(self, array, dest):
        """A value for another device: in one process it goes through the host (None)."""
        return

    def to_host(self, array) -> np.ndarray:
        return self.on_thread(self.kind.to_host, self.device, array, self._staging)

    def release(self, arrays: list) -> None:
        """Drop the last references to device buffers on the worker thread, without
        waiting for it: the worker frees them between calls."""
        if self.owns_thread():
            arrays.clear()
        else:
            self.worker.submit(arrays.clear)

    def close(self):
        def teardown():
            # IREE objects must go in dependency order, or teardown can crash.
            self.functions.clear()
            self._staging.clear()
            for attr in ("context", "main", "providers", "instance", "device"):
                setattr(self, attr, None)

        self.on_thread(teardown)
        self.worker.shutdown(wait=True)
