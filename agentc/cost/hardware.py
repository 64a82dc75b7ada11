"""Load the hardware catalog (hardware.yaml): datasheet peaks, memory, links and prices of the
device types agentc may place operators on, each with the public source it came from.

Why a separate, strict loader: these numbers feed placement what-ifs ("what if this ran on an
H100?") and cost estimates, so a typo or an unsourced guess silently skews every decision built
on them. The loader refuses a file that is missing a required field, has a non-number (YAML 1.1
reads `1.0e11` as a string), a non-positive rate, an unknown dtype or runtime, or an entry with
no sources, and says which file and field is at fault:
``<file>: devices.<id>.<field>: <what was expected>, <what was found>``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

HARDWARE_PATH = Path(__file__).with_name("hardware.yaml")
DTYPES = ("fp32", "tf32", "fp16", "bf16", "int8", "fp8")
KINDS = ("cpu", "gpu", "accelerator")
RUNTIMES = ("cpu", "cuda", "vulkan", None)
REQUIRED = ("vendor", "kind", "peak_flops", "memory_bandwidth", "memory_bytes", "sources")
OPTIONAL = ("name", "tdp_w", "host_link", "device_link", "price", "runtime", "notes")


class HardwareError(ValueError):
    pass


MISSING = type("Missing", (), {"__repr__": lambda self: "nothing"})()


@dataclass(frozen=True)
class Link:
    kind: str
    bandwidth: float | None  # bytes/s per direction; None where no source states it


@dataclass(frozen=True)
class Source:
    what: str
    url: str
    date: str


@dataclass(frozen=True)
class HardwareSpec:
    id: str
    vendor: str
    kind: str
    peak_flops: Mapping[str, float]  # dense FLOP/s (OP/s for int8) by dtype
    memory_bandwidth: float  # bytes/s
    memory_bytes: float
    sources: tuple[Source, ...]
    runtime: str | None = None
    name: str = ""
    tdp_w: float | None = None
    host_link: Link | None = None
    device_link: Link | None = None
    on_demand_per_hour: float | None = None  # USD per device-hour
    price_instance: str = ""
    capex_usd: float | None = None
    notes: str = ""

    def peak(self, dtype: str) -> float:
        """Dense peak rate for `dtype`; a clear error if the device has no such rate."""
        if dtype not in self.peak_flops:
            known = ", ".join(self.peak_flops)
            raise HardwareError(f"{self.id} has no {dtype!r} peak in the catalog (it has: {known})")
        return self.peak_flops[dtype]

    def cost_per_s(self) -> float | None:
        """On-demand USD per device-second, or None where no public price is recorded."""
        return None if self.on_demand_per_hour is None else self.on_demand_per_hour / 3600.0


def load_hardware(path: str | Path = HARDWARE_PATH) -> dict[str, HardwareSpec]:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as e:
        raise HardwareError(f"{path}: cannot read hardware catalog: {e}") from None
    devices = data.get("devices") if isinstance(data, dict) else None
    if not isinstance(devices, dict) or not devices:
        raise HardwareError(f"{path}: devices: expected a mapping of device ids, found {devices!r}")
    return {str(i): _device(path, str(i), d) for i, d in devices.items()}


def _device(path: Path, dev: str, d: Any) -> HardwareSpec:
    def fail(field: str, expected: str, found: Any) -> HardwareError:
        where = f"devices.{dev}.{field}".rstrip(".")
        return HardwareError(f"{path}: {where}: expected {expected}, found {found!r}")

    def rate(field: str, v: Any, optional: bool = False) -> Any:  # bool is not a number here
        if v is None and optional:
            return None
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise fail(field, "a number (write floats as 1.0e+11)", v)
        if v <= 0:
            raise fail(field, "a number > 0", v)
        return float(v)

    def text(field: str, v: Any) -> str:
        if not isinstance(v, str) or not v.strip():
            raise fail(field, "a non-empty string", v)
        return v

    def fields(field: str, m: Any, allowed: tuple, required: tuple = ()) -> dict:
        prefix = f"{field}." if field else ""
        if not isinstance(m, dict):
            raise fail(field, f"a mapping with keys {', '.join(allowed)}", m)
        for k in required:
            if k not in m:
                raise fail(prefix + k, "a value (required field)", MISSING)
        for k in m:
            if k not in allowed:
                raise fail(prefix + str(k), f"a key among {', '.join(allowed)}", k)
        return m

    def link(field: str, v: Any) -> Link | None:
        if v is None:
            return None
        v = fields(field, v, ("kind", "bandwidth"), ("kind",))
        return Link(
            text(f"{field}.kind", v["kind"]), rate(f"{field}.bandwidth", v.get("bandwidth"), True)
        )

    d = fields("", d, REQUIRED + OPTIONAL, REQUIRED)
    if d["kind"] not in KINDS:
        raise fail("kind", f"one of {', '.join(KINDS)}", d["kind"])
    if d.get("runtime") not in RUNTIMES:
        raise fail("runtime", "one of cpu, cuda, vulkan or null", d.get("runtime"))
    pf = fields("peak_flops", d["peak_flops"], DTYPES, ("fp32",))
    srcs = d["sources"]
    if not isinstance(srcs, list) or not srcs:
        raise fail("sources", "a non-empty list of {what, url, date}", srcs)
    sources = []
    for n, s in enumerate(srcs):
        s = fields(f"sources[{n}]", s, ("what", "url", "date"), ("what", "url", "date"))
        sources.append(Source(*(text(f"sources[{n}].{k}", s[k]) for k in ("what", "url", "date"))))
    price = fields("price", d.get("price") or {}, ("on_demand_per_hour", "instance", "capex_usd"))
    return HardwareSpec(
        id=dev,
        vendor=text("vendor", d["vendor"]),
        kind=d["kind"],
        peak_flops=MappingProxyType({k: rate(f"peak_flops.{k}", v) for k, v in pf.items()}),
        memory_bandwidth=rate("memory_bandwidth", d["memory_bandwidth"]),
        memory_bytes=rate("memory_bytes", d["memory_bytes"]),
        sources=tuple(sources),
        runtime=d.get("runtime"),
        name=d.get("name") or "",
        tdp_w=rate("tdp_w", d.get("tdp_w"), True),
        host_link=link("host_link", d.get("host_link")),
        device_link=link("device_link", d.get("device_link")),
        on_demand_per_hour=rate("price.on_demand_per_hour", price.get("on_demand_per_hour"), True),
        price_instance=text("price.instance", price["instance"]) if "instance" in price else "",
        capex_usd=rate("price.capex_usd", price.get("capex_usd"), True),
        notes=d.get("notes") or "",
    )
