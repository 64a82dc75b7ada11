"""Device arrays back to NumPy: shared by the runtime and by the benchmark harness, which
runs on GPU machines with nothing but numpy and iree.runtime (so it imports no runtime)."""

from __future__ import annotations

import numpy as np


def read_back(device, array, staged: bool, staging: dict | None = None) -> np.ndarray:
    """A device array as a NumPy array that owns its memory.

    A mapped view would pin IREE's buffer mapping past the session's life and crash when
    the array is freed after the device is gone. `staged`: copy through a host-visible
    buffer (CUDA, Vulkan). `staging` (size -> buffer), owned by the caller's device thread,
    keeps those buffers for reuse: allocating pinned host memory per readback cost ~2 ms on
    CUDA, more than the copy."""
    if not staged:
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
