"""Dropping a request's values once nothing reads them (the runtime's session)."""

from __future__ import annotations


def pop_values(vids, values: dict, copies: dict, devices) -> dict[str, list]:
    """Forget `vids` and their host copies; returns the device-resident ones by device, for
    the caller to free on each device's thread (`Device.release`, one task per device).
    Without this, every layer's KV cache of every decode step would live until the request
    ends, and IREE's allocator grows by hundreds of MB per request."""
    by_device: dict[str, list] = {}
    for vid in vids:
        copies.pop(vid, None)
        where, val = values.pop(vid, ("host", None))
        if where in devices:
            by_device.setdefault(where, []).append(val)
    return by_device
