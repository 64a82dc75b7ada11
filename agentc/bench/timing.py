"""Timing IREE modules on a HAL device: kernels, readbacks and host<->device copies.

Needs only numpy and iree.runtime, so the artifact runner can use it on a machine that has
neither the IREE compiler nor agentc's other dependencies.

Why the clock is right: inputs are uploaded once (`upload`) so a call's time holds no host
copies; a module's exported functions are synchronous under IREE's default execution
model (async-internal: the ABI wrapper waits on the result fence), so when a call returns
the device work is done, on cuda and vulkan too. Reading the result back is timed apart
(`readback`), through a host-visible staging buffer where the device needs one (lavapipe
cannot import unaligned host memory; cuda results live in device memory).
"""

from __future__ import annotations

import gc
import time
from dataclasses import dataclass

import numpy as np

from agentc.devices.hal_device import create_device

DTYPES = {"f32": np.float32, "f16": np.float16, "f64": np.float64, "i32": np.int32,
          "i64": np.int64, "i8": np.int8, "i1": np.bool_}


@dataclass(frozen=True)
class Stats:
    median_s: float
    p10_s: float
    p90_s: float
    n: int
    trimmed_mean_s: float  # mean of the calls between p10 and p90

    @staticmethod
    def of(samples: list[float]) -> Stats:
        """The trimmed mean is what a sum of many calls costs, without the rare stalls: on a
        shared CPU a small call's times are bimodal (a worker thread already awake, or
        woken), and the median jumps between the modes where the mean moves smoothly."""
        a = np.asarray(samples, float)
        lo, hi = np.percentile(a, 10), np.percentile(a, 90)
        middle = a[(a >= lo) & (a <= hi)]
        return Stats(float(np.median(a)), float(lo), float(hi), len(a), float(middle.mean()))


def repeat(fn, budget_s: float, min_reps: int = 5, max_reps: int = 200,
           warmup: int = 2) -> Stats:
    """Per-call wall times of `fn()` after `warmup` calls: as many calls as fit in
    `budget_s`, at least `min_reps` and at most `max_reps`."""
    t0 = time.perf_counter()
    for _ in range(warmup):
        fn()
    per_call = (time.perf_counter() - t0) / max(warmup, 1)
    reps = int(np.clip(budget_s / max(per_call, 1e-7), min_reps, max_reps))
    samples = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return Stats.of(samples)


def interleaved(fns: list, budget_s: float, rounds: int = 5, min_reps: int = 5,
                max_reps: int = 1000, warmup: int = 2, step=None) -> list[Stats]:
    """Like `repeat` for many callables, measured in `rounds` round-robin passes: on a
    shared machine a burst of someone else's load then spreads over all kernels instead of
    skewing the few that ran during it. `step(i)` is called after each callable's turn."""
    reps = []
    for fn in fns:
        t0 = time.perf_counter()
        for _ in range(warmup):
            fn()
        per_call = (time.perf_counter() - t0) / max(warmup, 1)
        total = int(np.clip(budget_s / max(per_call, 1e-7), min_reps, max_reps))
        reps.append(max(1, -(-total // rounds)))
    samples: list[list[float]] = [[] for _ in fns]
    for _ in range(rounds):
        for i, fn in enumerate(fns):
            for _ in range(reps[i]):
                start = time.perf_counter()
                fn()
                samples[i].append(time.perf_counter() - start)
            if step is not None:
                step(i)
    return [Stats.of(s) for s in samples]


class Device:
    """One HAL device with the modules loaded on it; `close()` tears down in dependency
    order (IREE objects freed in the wrong order can crash at exit)."""

    def __init__(self, driver: str, staged_readback: bool, index: int = 0):
        import iree.runtime as rt

        from agentc.devices import KINDS
        from agentc.devices.base import DeviceKind

        self.rt = rt
        self.driver, self.staged_readback = driver, staged_readback
        # Transfers go through the device kind's plug-in, as in the runtime.
        self.kind = next((k for k in KINDS.values() if k.driver == driver and k.staged_readback == staged_readback),
                         DeviceKind(driver, driver, "", staged_readback=staged_readback))
        drv = rt.get_driver(driver)
        infos = drv.query_available_devices()
        if index >= len(infos):
            raise RuntimeError(f"HAL driver '{driver}' has {len(infos)} device(s); "
                               f"device {index} asked for")
        self.info = infos[index]
        self.device = create_device(driver, self.info["device_id"])
        self.instance = rt.VmInstance()
        self.hal = rt.create_hal_module(self.instance, self.device)
        self._keep: list = []
        self._staging: dict = {}  # readback buffers by size, reused as the runtime reuses them

    def load(self, vmfb: bytes, function: str):
        """The callable for `function` of a compiled module."""
        rt = self.rt
        module = rt.VmModule.copy_buffer(self.instance, vmfb)
        context = rt.VmContext(self.instance, modules=[self.hal, module])
        invoker = rt.FunctionInvoker(context, self.device, module.lookup_function(function))
        self._keep.append((invoker, context, module))
        return invoker

    def unload_all(self) -> None:
        while self._keep:
            self._keep.pop()  # newest first: invoker, then its context, then its module
        gc.collect()

    def upload(self, array: np.ndarray):
        return self.kind.upload(self.device, array)

    def readback(self, array) -> np.ndarray:
        """A device array as a NumPy array that owns its memory, read the way the runtime
        reads results (staging buffers kept per size), so measured readbacks are its cost."""
        return self.kind.to_host(self.device, array, self._staging)

    def close(self) -> None:
        self.unload_all()
        self._staging.clear()
        for attr in ("hal", "instance", "device"):
            setattr(self, attr, None)
        gc.collect()


def random_input(shape: list[int], dtype: str, rng: np.random.Generator) -> np.ndarray:
    np_dtype = DTYPES.get(dtype)
    if np_dtype is None:
        raise ValueError(f"input dtype '{dtype}' is not supported by the bench runner")
    if np.issubdtype(np_dtype, np.floating):
        return rng.standard_normal(shape).astype(np_dtype)
    return np.zeros(shape, np_dtype)


def transfer_times(devices: list[Device], sizes: list[int], budget_s: float) -> list[dict]:
    """Host->device, device->host and (with two devices) device->device copy times.
    Device to device goes through the host, as agentc's runtime moves tensors."""
    out = []
    first = devices[0]
    for size in sizes:
        host = np.ones(size // 4, np.float32)
        on_device = first.upload(host)
        h2d = repeat(lambda host=host: first.upload(host), budget_s, min_reps=3, warmup=1)
        d2h = repeat(lambda a=on_device: first.readback(a), budget_s, min_reps=3, warmup=1)
        out += [_transfer("h2d", size, h2d), _transfer("d2h", size, d2h)]
        for second in devices[1:2]:
            d2d = repeat(lambda a=on_device, dst=second: dst.upload(first.readback(a)), budget_s,
                         min_reps=3, warmup=1)
            out.append(_transfer("d2d", size, d2d))
        del on_device
    return out


def _transfer(direction: str, size: int, stats: Stats) -> dict:
    return {"direction": direction, "bytes": size, "seconds": stats.median_s,
            "p10_s": stats.p10_s, "p90_s": stats.p90_s, "n": stats.n,
            "gb_per_s": size / stats.median_s / 1e9}
