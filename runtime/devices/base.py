"""What a device plug-in provides."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class DeviceKind:
    name: str
    driver: str  # IREE HAL driver
    target: str  # IREE compile target backend
    compile_flags: tuple[str, ...] = field(default_factory=tuple)
    staged_readback: bool = False  # copy through a host-visible buffer to read results

    def available(self) -> bool:
        return _probe(self.driver)

    def create(self, driver: str | None = None):
        """A HAL device; `driver` overrides the kind's (e.g. local-sync for cpu)."""
        import iree.runtime as rt

        return rt.get_driver(driver or self.driver).create_default_device()

    def to_host(self, device, array, staging: dict | None = None) -> np.ndarray:
        """A device result as a NumPy array that owns its memory.

        A mapped view would pin IREE's buffer mapping past the session's life and crash
        when the array is freed after the device is gone. `staging` (size -> buffer),
        owned by the caller's device thread, keeps host-visible staging buffers for reuse:
        allocating pinned host memory per readback cost ~2 ms on CUDA, more than the copy."""
        if not self.staged_readback:
            return np.array(array.to_host(), copy=True)
        import iree.runtime as rt

        buf = array._buffer_view.get_buffer()
        size = buf.byte_length()
        stage = (staging or {}).get(size)
        if stage is None:
            stage = device.allocator.allocate_buffer(
                memory_type=rt.MemoryType.HOST_LOCAL | rt.MemoryType.DEVICE_VISIBLE,
                allowed_usage=rt.BufferUsage.TRANSFER | rt.BufferUsage.MAPPING,
                allocation_size=size)
            if staging is not None:
                staging[size] = stage
        sem = device.create_semaphore(0)
        device.queue_copy(buf, stage, [], [(sem, 1)])
        sem.wait(1)
        return stage.map().asarray(tuple(array.shape), np.dtype(array.dtype)).copy()


@functools.cache
def _probe(driver: str) -> bool:
    if driver == "cuda":
        import ctypes

        try:  # probing IREE's cuda driver without a CUDA driver library can crash
            ctypes.CDLL("libcuda.so.1")
        except OSError:
            return False
    try:
        import iree.runtime as rt

        d = rt.get_driver(driver)
        return bool(d.query_available_devices())
    except Exception:  # noqa: BLE001 - a driver that fails to probe is not usable
        return False
