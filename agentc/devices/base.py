"""What a device plug-in provides."""

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

    def to_host(self, device, array, staging: dict | None = None) -> np.ndarray:
        return read_back(device, array, self.staged_readback, staging)


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
