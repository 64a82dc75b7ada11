"""Device plug-ins: one module per kind, each bundling its IREE compile target and flags,
its HAL driver, and how to read results back to the host. `KINDS` lists them by name."""

from __future__ import annotations

from agentc.devices import cpu, cuda, vulkan

KINDS = {m.KIND.name: m.KIND for m in (cpu, cuda, vulkan)}


def usable() -> list[str]:
    """Names of the device kinds this machine can run, in a stable order."""
    return [name for name, kind in KINDS.items() if kind.available()]
