"""The cluster a placement targets: which devices exist, what they cost, how they connect.

A cluster is either this machine (`local_cluster`: the usable devices `cpu`, `vulkan`,
`cuda`, with the rates of cost_models/catalog.yaml) or a YAML file:

    host: {threads: 8}                    # the host thread pool that runs host ops
    devices:
      - type: a100-80gb                   # an id of cost_models/hardware.yaml, or cpu|vulkan|cuda
        name: a100                        # optional, defaults to the type
        count: 2                          # instances a100:0, a100:1 (one, named a100, if 1)
        cost_per_hour: 1.29               # optional; else the catalog's on-demand price, or
        # capex_usd: 15000, years: 4, power_usd_per_kwh: 0.12   (capex + power at TDP)
        reserve_usd_per_request: 0.0      # optional: charged once per request that uses it
        host_link: {latency_us: 10, bandwidth_gbps: 25}   # optional; else the catalog's PCIe
                                          # (null: no path to the host)
    links:                                # device <-> device; none listed, none exists
      - between: [a100, t4]               # names, types or a name twice (its instances)
        latency_us: 20
        bandwidth_gbps: 12

Rates come from the hardware catalog (datasheets); efficiencies and call overheads from
the catalog entry of the runtime that drives the device (defaults until `agentc bench`
calibrates them). A device whose type has no agentc runtime (AMD, Gaudi) still takes
part in placement what-ifs; only compiling a build for it is refused.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import yaml

from agentc.cost_models.catalog import Catalog, DeviceSpec, load_catalog
from agentc.frontend.graph import AgentError

HOURS_PER_YEAR = 8766.0
PCIE_LATENCY_S = 1.0e-5  # per transfer, when the cluster file gives none
# Per-direction x16 rates of each PCIe generation (PCI-SIG: 8, 16, 32 GT/s per lane with
# 128b/130b encoding), for catalog entries that name the link but state no bandwidth.
PCIE_X16_BYTES_PER_S = {"pcie3x16": 15.75e9, "pcie4x16": 31.5e9, "pcie5x16": 63.0e9}


@dataclass(frozen=True)
class ClusterDevice:
    name: str  # unique instance name: "cpu", "a100:1"
    type: str  # hardware id or local kind
    group: str  # the name before the instance index: what a link entry may refer to
    runtime: str | None  # agentc runtime plug-in (cpu|vulkan|cuda); None: placement only
    spec: DeviceSpec  # rates for the cost model; spec.cost_per_hour is the device's rate
    reserve_cost: float = 0.0  # $ per request that uses the device
    host_link: tuple[float, float] | None = None  # (latency s, bandwidth bytes/s)


@dataclass
class Cluster:
    devices: dict[str, ClusterDevice]
    links: dict[tuple[str, str], tuple[float, float]]  # instance pair -> (latency, bandwidth)
    host_threads: int
    host_latency_s: dict[str, float]
    source: str = "this machine"

    def describe(self) -> str:
        return ", ".join(f"{d.name} ({d.type})" if d.name != d.type else d.name
                         for d in self.devices.values())


def local_cluster(devices: list[str], catalog: Catalog | None = None) -> Cluster:
    """This machine's devices by local kind (cpu, vulkan, cuda), catalog.yaml rates."""
    catalog = catalog or load_catalog()
    out = {}
    for d in devices:
        if d not in catalog.devices:
            raise AgentError(f"--devices: unknown device '{d}' (known: {', '.join(catalog.devices)})")
        out[d] = ClusterDevice(d, d, d, catalog.devices[d].runtime, catalog.devices[d])
    links = {}
    for a in out.values():
        for b in out.values():
            sa, sb = a.spec.memory_space or a.name, b.spec.memory_space or b.name
            lk = catalog.links.get((sa, sb)) or catalog.links.get((sb, sa))
            if a.name != b.name and sa != sb and lk:
                links[(a.name, b.name)] = lk
    host = {d.name: catalog.links.get(("host", d.spec.memory_space or d.name)) for d in out.values()}
    out = {n: dataclasses.replace(d, host_link=host[n]) for n, d in out.items()}
    return Cluster(out, links, catalog.host_threads, catalog.host_latency_s)


def load_cluster(path: str | Path, catalog: Catalog | None = None) -> Cluster:
    """Parse a cluster YAML; errors name the file and the field at fault."""
    from agentc.cost_models.hardware import HardwareError, load_hardware

    path = Path(path)
    catalog = catalog or load_catalog()
    try:
        data = yaml.safe_load(path.read_text()) or {}
        hardware = load_hardware()
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f":{mark.line + 1}" if mark else ""
        raise AgentError(f"{path}{line}: cannot read cluster: {getattr(e, 'problem', None) or e}") from None
    except (OSError, HardwareError) as e:
        raise AgentError(f"{path}: cannot read cluster: {e}") from None
    if not isinstance(data, dict) or not isinstance(data.get("devices"), list) or not data["devices"]:
        raise AgentError(f"{path}: devices: expected a non-empty list of devices")
    where = _Where(path)
    devices: dict[str, ClusterDevice] = {}
    for i, entry in enumerate(data["devices"]):
        at = f"devices[{i}]"
        if not isinstance(entry, dict) or "type" not in entry:
            raise where.error(at, "expected a mapping with a 'type'")
        dtype = str(entry["type"])
        if dtype in catalog.devices:
            spec, runtime, link = catalog.devices[dtype], catalog.devices[dtype].runtime, None
        elif dtype in hardware:
            spec, runtime, link = _spec_from_hardware(hardware[dtype], catalog)
        else:
            known = sorted(set(catalog.devices) | set(hardware))
            raise where.error(f"{at}.type", f"unknown device type '{dtype}' (known: {', '.join(known)})")
        count = where.number(entry, "count", at, default=1, integer=True)
        rate = _cost_per_hour(entry, dtype, hardware.get(dtype), spec, where, at)
        reserve = where.number(entry, "reserve_usd_per_request", at, default=0.0, minimum=0.0)
        if "host_link" in entry:  # null: the device cannot exchange data with the host
            link = None if entry["host_link"] is None else where.link(entry["host_link"], f"{at}.host_link")
        group = str(entry.get("name", dtype))
        spec = dataclasses.replace(spec, cost_per_hour=rate)
        for k in range(count):
            name = group if count == 1 else f"{group}:{k}"
            if name in devices:
                raise where.error(f"{at}.name", f"duplicate device name '{name}'")
            devices[name] = ClusterDevice(name, dtype, group, runtime, spec, reserve, link)
    links = {}
    for i, entry in enumerate(data.get("links") or []):
        at = f"links[{i}]"
        ends = entry.get("between") if isinstance(entry, dict) else None
        if not (isinstance(ends, list) and len(ends) == 2):
            raise where.error(f"{at}.between", "expected two device names or types")
        sides = []
        for end in ends:
            match = [d.name for d in devices.values() if str(end) in (d.name, d.group, d.type)]
            if not match:
                raise where.error(f"{at}.between", f"no device named '{end}' in this cluster")
            sides.append(match)
        lk = where.link(entry, at)
        for a in sides[0]:
            for b in sides[1]:
                if a != b:
                    links[(a, b)] = links[(b, a)] = lk
    host = data.get("host") or {}
    threads = where.number(host, "threads", "host", default=catalog.host_threads, integer=True)
    return Cluster(devices, links, threads, catalog.host_latency_s, source=str(path))


def _spec_from_hardware(hw, catalog: Catalog) -> tuple[DeviceSpec, str | None, tuple | None]:
    """Datasheet rates (fp32: the kernels agentc exports are f32) with the efficiencies
    and overheads of the runtime that would drive the device."""
    base = catalog.devices.get(hw.runtime or "", catalog.devices["cuda" if hw.kind != "cpu" else "cpu"])
    spec = dataclasses.replace(
        base, name=hw.id, peak_flops=hw.peak("fp32"), memory_bandwidth=hw.memory_bandwidth,
        memory_bytes=hw.memory_bytes, memory_space="host" if hw.kind == "cpu" else "",
        description=hw.name or hw.id)
    bw = None
    if hw.host_link:
        bw = hw.host_link.bandwidth or PCIE_X16_BYTES_PER_S.get(hw.host_link.kind)
    link = (PCIE_LATENCY_S, bw) if bw else None
    return spec, hw.runtime, link


def _cost_per_hour(entry: dict, dtype: str, hw, spec: DeviceSpec, where, at: str) -> float:
    if "cost_per_hour" in entry:
        return where.number(entry, "cost_per_hour", at, minimum=0.0)
    if "capex_usd" in entry:
        capex = where.number(entry, "capex_usd", at, minimum=0.0)
        years = where.number(entry, "years", at, default=4.0, minimum=1e-9)
        kwh = where.number(entry, "power_usd_per_kwh", at, default=0.10, minimum=0.0)
        tdp = getattr(hw, "tdp_w", None) or 0.0
        return capex / (years * HOURS_PER_YEAR) + tdp / 1e3 * kwh
    if hw is not None and hw.on_demand_per_hour is not None:
        return hw.on_demand_per_hour
    if hw is None:
        return spec.cost_per_hour
    raise where.error(f"{at}.cost_per_hour", f"'{dtype}' has no public price in the catalog; give "
                                             "cost_per_hour or capex_usd")


class _Where:
    """Field readers whose errors name the file and the field."""

    def __init__(self, path: Path):
        self.path = path

    def error(self, field: str, msg: str) -> AgentError:
        return AgentError(f"{self.path}: {field}: {msg}")

    def number(self, d: dict, key: str, at: str, default=None, integer=False, minimum=None):
        if key not in d:
            if default is None:
                raise self.error(f"{at}.{key}", "missing")
            return default
        v = d[key]
        if isinstance(v, str):
            try:
                v = float(v)
            except ValueError:
                pass
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise self.error(f"{at}.{key}", f"expected a number, got {v!r}")
        if integer and (v != int(v) or v < 1):
            raise self.error(f"{at}.{key}", f"expected a whole number >= 1, got {v!r}")
        if minimum is not None and v < minimum:
            raise self.error(f"{at}.{key}", f"must be >= {minimum:g}, got {v!r}")
        return int(v) if integer else float(v)

    def link(self, d, at: str) -> tuple[float, float]:
        if not isinstance(d, dict):
            raise self.error(at, "expected a mapping with latency_us and bandwidth_gbps")
        latency = self.number(d, "latency_us", at, default=0.0, minimum=0.0) * 1e-6
        bw = self.number(d, "bandwidth_gbps", at)
        if bw <= 0:
            raise self.error(f"{at}.bandwidth_gbps", f"must be > 0, got {bw:g}")
        return latency, bw * 1e9
