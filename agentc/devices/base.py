"""What a device plug-in provides: everything that differs between kinds of device lives
here, behind one `DeviceKind` per kind (agentc/devices/<kind>.py) — how to compile for it
(IREE target and flags), how to open it (HAL driver), how data moves in and out (upload,
readback), and what it costs (its catalog spec, calibrated by its profile)."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np

from agentc.devices.hal_device import create_device
from agentc.devices.readback import read_back


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
        return create_device(driver or self.driver)

    def upload(self, device, array: np.ndarray):
        """Host data into the device's memory (a transfer's second half)."""
        import iree.runtime as rt

        # (np.require, not np.ascontiguousarray: that one makes a 0-d array 1-d)
        return rt.asdevicearray(device, np.require(array, requirements="C"))

    def to_host(self, device, array, staging: dict | None = None) -> np.ndarray:
        """Device data back to the host, as a NumPy array that owns its memory."""
        return read_back(device, array, self.staged_readback, staging)

    def spec(self, catalog=None):
        """The cost hook: this kind's catalog entry (rates, memory, per-call overheads,
        calibration profile), from `catalog` or the one shipped with agentc."""
        from agentc.cost.catalog import load_catalog

        catalog = catalog or load_catalog()
        if self.name not in catalog.devices:
            raise KeyError(f"device kind '{self.name}' has no entry in the catalog")
        return catalog.devices[self.name]


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
