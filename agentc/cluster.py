"""The cluster a placement targets: which devices exist, what they cost, how they connect.

A cluster is either this machine (`local_cluster`: the usable devices `cpu`, `vulkan`,
`cuda`, with the rates of agentc/cost_models/catalog.yaml) or a YAML file:

    host: {threads: 8}                    # the host thread pool that runs host ops
    devices:
      - type: a100-80gb                   # an id of agentc/cost_models/hardware.yaml, or cpu|vulkan|cuda
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
import difflib
import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from agentc.cost_models.catalog import Catalog, DeviceSpec, load_catalog
from agentc.frontend.graph import AgentError

HOURS_PER_YEAR = 8766.0
PCIE_LATENCY_S = 1.0e-5  # per transfer, when the cluster file gives none
# Per-direction x16 rates of each PCIe generation (PCI-SIG: 8, 16, 32 GT/s per lane with
# 128b/130b encoding), for catalog entries that name the link but state no bandwidth.
PCIE_X16_BYTES_PER_S = {"pcie3x16": 15.75e9, "pcie4x16": 31.5e9, "pcie5x16": 63.0e9}


MAX_DEVICES = 1_000_000  # devices of one cluster file; counts are free, a typo like 1e12 is not
ENTRY_KEYS = ("type", "name", "count", "cost_per_hour", "capex_usd", "years", "power_usd_per_kwh",
              "reserve_usd_per_request", "host_link")
KEYS = {"": ("host", "devices", "links"), "host": ("threads",), "devices[]": ENTRY_KEYS,
        "devices[].host_link": ("latency_us", "bandwidth_gbps"),
        "links[]": ("between", "latency_us", "bandwidth_gbps")}
PINNED_LIMIT = 256  # a link may name one device only in a group this small


@dataclass(frozen=True)
class ClusterDevice:
    name: str  # unique instance name: "cpu", "a100:1"
    type: str  # hardware id or local kind
    group: str  # the name before the instance index: what a link entry may refer to
    runtime: str | None  # agentc runtime plug-in (cpu|vulkan|cuda); None: placement only
    spec: DeviceSpec  # rates for the cost model; spec.cost_per_hour is the device's rate
    reserve_cost: float = 0.0  # $ per request that uses the device
    host_link: tuple[float, float] | None = None  # (latency s, bandwidth bytes/s)


@dataclass(frozen=True)
class DeviceGroup:
    """One entry of a cluster file: `count` identical devices, named `name` (one) or
    `name:0`, `name:1`, ... Placement never lists a group's devices beyond those it can use
    (`Cluster.trimmed`), so a count of 10,000 costs what a count of a few does."""

    name: str
    type: str
    runtime: str | None
    spec: DeviceSpec
    reserve_cost: float
    host_link: tuple[float, float] | None
    count: int
    links: tuple = ()  # (link entry index, side) of every entry that names this group

    def instance(self, k: int) -> str:
        return self.name if self.count == 1 else f"{self.name}:{k}"

    def device(self, k: int) -> ClusterDevice:
        return ClusterDevice(self.instance(k), self.type, self.name, self.runtime, self.spec,
                             self.reserve_cost, self.host_link)

    def likeness(self) -> tuple:
        """Groups with equal likeness are interchangeable: same rates, prices and links."""
        return (self.type, self.runtime, self.spec, self.reserve_cost, self.host_link, self.links)


@dataclass
class GroupLinks:
    """Links between groups, as the cluster file gives them: each entry joins every group of
    one side to every group of the other (the last entry that joins a pair wins). Kept as
    entries, not pairs: two sides of 5,000 groups each are 25 million pairs."""

    entries: list[tuple[frozenset, frozenset, tuple[float, float]]] = field(default_factory=list)

    def get(self, a: str, b: str) -> tuple[float, float] | None:
        for x, y, lk in reversed(self.entries):
            if (a in x and b in y) or (a in y and b in x):
                return lk
        return None


@dataclass
class Cluster:
    groups: dict[str, DeviceGroup]
    group_links: GroupLinks
    host_threads: int
    host_latency_s: dict[str, float]
    source: str = "this machine"
    instance_links: dict[tuple[str, str], tuple[float, float]] = field(default_factory=dict)
    limit: dict[str, int] | None = None  # instances listed per group (None: all)

    @functools.cached_property
    def devices(self) -> dict[str, ClusterDevice]:
        """The listed devices, in group order."""
        out = {}
        for g in self.groups.values():
            for k in range(self.listed(g)):
                d = g.device(k)
                out[d.name] = d
        return out

    def listed(self, g: DeviceGroup) -> int:
        return g.count if self.limit is None else self.limit.get(g.name, 0)

    @functools.cached_property
    def links(self) -> dict[tuple[str, str], tuple[float, float]]:
        """Device pair -> (latency s, bandwidth bytes/s), for the listed devices."""
        out = {}
        devs = list(self.devices.values())
        for a in devs:
            for b in devs:
                if a.name != b.name:
                    lk = self.instance_links.get((a.name, b.name)) or self.group_links.get(a.group, b.group)
                    if lk:
                        out[(a.name, b.name)] = lk
        return out

    @property
    def size(self) -> int:
        """Devices in the cluster, listed or not."""
        return sum(g.count for g in self.groups.values())

    @functools.cached_property
    def pinned(self) -> frozenset[str]:
        """Groups a link names single devices of: their devices are not interchangeable."""
        return frozenset(d.rpartition(":")[0] for pair in self.instance_links for d in pair)

    def classes(self) -> list[list[DeviceGroup]]:
        """Groups of interchangeable devices (DeviceGroup.likeness), in declaration order;
        a pinned group is a class of its own, never trimmed."""
        by: dict[tuple, list[DeviceGroup]] = {}
        for g in self.groups.values():
            by.setdefault(("pinned", g.name) if g.name in self.pinned else g.likeness(), []).append(g)
        return list(by.values())

    def trimmed(self, per_class: Callable[[list[DeviceGroup]], int]) -> Cluster:
        """This cluster listing, of each class of interchangeable devices, only the first
        `per_class(groups)` (pinned groups: all)."""
        limit = {}
        for groups in self.classes():
            pinned = groups[0].name in self.pinned
            left = sum(g.count for g in groups) if pinned else per_class(groups)
            for g in groups:
                limit[g.name] = min(g.count, max(left, 0))
                left -= limit[g.name]
        return dataclasses.replace(self, limit=limit)

    def describe(self) -> str:
        parts = []
        for g in self.groups.values():
            n = self.listed(g)
            if n == 0:
                continue
            label = f"{g.name} ({g.type})" if g.name != g.type else g.name
            parts.append(label if g.count == 1 else f"{label} x{n}" + (f" of {g.count}" if n < g.count else ""))
        return ", ".join(parts)


def local_cluster(devices: list[str], catalog: Catalog | None = None) -> Cluster:
    """This machine's devices by local kind (cpu, vulkan, cuda), catalog.yaml rates."""
    catalog = catalog or load_catalog()
    groups = {}
    for d in devices:
        if d not in catalog.devices:
            raise AgentError(f"--devices: unknown device '{d}' (known: {', '.join(catalog.devices)})")
        spec = catalog.devices[d]
        host = catalog.links.get(("host", spec.memory_space or d))
        groups[d] = DeviceGroup(d, d, spec.runtime, spec, 0.0, host, 1)
    links = GroupLinks()
    for a in groups.values():
        for b in groups.values():
            sa, sb = a.spec.memory_space or a.name, b.spec.memory_space or b.name
            lk = catalog.links.get((sa, sb)) or catalog.links.get((sb, sa))
            if a.name != b.name and sa != sb and lk:
                links.entries.append((frozenset([a.name]), frozenset([b.name]), lk))
    return Cluster(groups, links, catalog.host_threads, catalog.host_latency_s)


def load_cluster(path: str | Path, catalog: Catalog | None = None) -> Cluster:
    """Parse a cluster YAML; errors name the file, the line and the field at fault."""
    from agentc.cost_models.hardware import HardwareError, load_hardware

    path = Path(path)
    catalog = catalog or load_catalog()
    try:
        text = path.read_text(encoding="utf-8")
        loader = yaml.SafeLoader(text)
        try:
            node = loader.get_single_node()
            data = loader.construct_document(node) if node is not None else {}
        finally:
            loader.dispose()
        hardware = load_hardware()
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f":{mark.line + 1}" if mark else ""
        raise AgentError(f"{path}{line}: cannot read cluster: {getattr(e, 'problem', None) or e}") from None
    except UnicodeDecodeError as e:
        raise AgentError(f"{path}: cannot read cluster: not UTF-8 text (byte {e.start})") from None
    except (OSError, HardwareError) as e:
        raise AgentError(f"{path}: cannot read cluster: {getattr(e, 'strerror', None) or e}") from None
    where = _Where(path, _lines(node))
    if not isinstance(data, dict):
        raise where.error("", "expected a mapping with 'devices' (and optionally 'host', 'links')")
    where.known_keys(data)
    if not isinstance(data.get("devices"), list) or not data["devices"]:
        raise where.error("devices", "expected a non-empty list of devices")
    if len(data["devices"]) > MAX_DEVICES:
        raise where.error("devices", f"{len(data['devices'])} entries; agentc places on at most {MAX_DEVICES}")
    links_in = data.get("links") or []
    if not isinstance(links_in, list):
        raise where.error("links", "expected a list of links")
    entries = []
    for i, entry in enumerate(data["devices"]):
        at = f"devices[{i}]"
        if not isinstance(entry, dict) or "type" not in entry:
            raise where.error(at, "expected a mapping with a 'type'")
        where.known_keys(entry, at, "devices[]")
        dtype = str(entry["type"])
        if dtype in catalog.devices:
            spec, runtime, link = catalog.devices[dtype], catalog.devices[dtype].runtime, None
        elif dtype in hardware:
            spec, runtime, link = _spec_from_hardware(hardware[dtype], catalog)
        else:
            known = sorted(set(catalog.devices) | set(hardware))
            near = difflib.get_close_matches(dtype, known, n=1)
            hint = f"did you mean '{near[0]}'? " if near else ""
            raise where.error(f"{at}.type", f"unknown device type '{dtype}' ({hint}known: {', '.join(known)})")
        count = where.number(entry, "count", at, default=1, integer=True)
        rate = _cost_per_hour(entry, dtype, hardware.get(dtype), spec, where, at)
        reserve = where.number(entry, "reserve_usd_per_request", at, default=0.0, minimum=0.0)
        if "host_link" in entry:  # null: the device cannot exchange data with the host
            hl = entry["host_link"]
            if isinstance(hl, dict):
                where.known_keys(hl, f"{at}.host_link", "devices[].host_link")
            link = None if hl is None else where.link(hl, f"{at}.host_link")
        name = entry.get("name", dtype)
        if not isinstance(name, str) or not name or ":" in name:
            raise where.error(f"{at}.name", f"expected a name without ':', got {name!r}")
        entries.append((at, DeviceGroup(name, dtype, runtime, dataclasses.replace(spec, cost_per_hour=rate),
                                        reserve, link, count)))
    total = sum(g.count for _, g in entries)
    if total > MAX_DEVICES:
        raise where.error("devices", f"{total} devices; agentc places on at most {MAX_DEVICES}")
    groups = _merge_unnamed(entries, where)
    group_links, instance_links, sides = _links(links_in, groups, where)
    groups = {n: dataclasses.replace(g, links=tuple(sorted(sides.get(n, ())))) for n, g in groups.items()}
    host = data.get("host") or {}
    if not isinstance(host, dict):
        raise where.error("host", "expected a mapping, e.g. {threads: 8}")
    where.known_keys(host, "host")
    threads = where.number(host, "threads", "host", default=catalog.host_threads, integer=True)
    return Cluster(groups, group_links, threads, catalog.host_latency_s, source=str(path),
                   instance_links=instance_links)


def _merge_unnamed(entries: list[tuple[str, DeviceGroup]], where: _Where) -> dict[str, DeviceGroup]:
    """Entries without a `name` of the same type and terms are one group (their counts
    add up); any other repeated name is an error."""
    groups: dict[str, DeviceGroup] = {}
    first: dict[str, str] = {}
    for at, g in entries:
        old = groups.get(g.name)
        if old is None:
            groups[g.name], first[g.name] = g, at
        elif g.name == g.type == old.name and old.likeness() == g.likeness():
            groups[g.name] = dataclasses.replace(old, count=old.count + g.count)
        else:
            raise where.error(f"{at}.name", f"duplicate device name '{g.name}' (also {first[g.name]}); "
                                            "give each entry its own name")
    return groups


def _links(entries: list, groups: dict[str, DeviceGroup], where: _Where):
    """Link entries -> (group pair -> link, device pair -> link, group -> (entry, side)s).
    An end names a group, a type (every group of it) or one device (`name:k`)."""
    group_links, instance_links, sides = GroupLinks(), {}, {}
    for i, entry in enumerate(entries):
        at = f"links[{i}]"
        if not isinstance(entry, dict):
            raise where.error(at, "expected a mapping with between, latency_us and bandwidth_gbps")
        where.known_keys(entry, at, "links[]")
        ends = entry.get("between")
        if not (isinstance(ends, list) and len(ends) == 2):
            raise where.error(f"{at}.between", "expected two device names or types")
        lk = where.link(entry, at)
        resolved = []
        for side, end in enumerate(ends):
            end = str(end)
            match = [g for g in groups.values() if end in (g.name, g.type)]
            if match:
                resolved.append(("groups", [g.name for g in match]))
                for g in match:
                    sides.setdefault(g.name, set()).add((i, side))
                continue
            name, _, k = end.rpartition(":")
            g = groups.get(name)
            if g is None or not k.isdigit() or int(k) >= g.count or g.count == 1:
                raise where.error(f"{at}.between", f"no device named '{end}' in this cluster")
            if g.count > PINNED_LIMIT:
                raise where.error(f"{at}.between", f"'{end}' is one device of a group of {g.count}; link "
                                                   f"groups of more than {PINNED_LIMIT} devices as a whole")
            resolved.append(("device", [end]))
        (ka, a), (kb, b) = resolved
        if ka == kb == "groups":
            group_links.entries.append((frozenset(a), frozenset(b), lk))
            continue
        for x in _instances(ka, a, groups):
            for y in _instances(kb, b, groups):
                if x != y:
                    instance_links[(x, y)] = instance_links[(y, x)] = lk
    return group_links, instance_links, sides


def _instances(kind: str, names: list[str], groups: dict[str, DeviceGroup]) -> list[str]:
    if kind == "device":
        return names
    out = []
    for n in names:
        if groups[n].count > PINNED_LIMIT:
            raise AgentError(f"a link between one device and group '{n}' of {groups[n].count} devices: "
                             f"link groups of more than {PINNED_LIMIT} devices as a whole")
        out += [groups[n].instance(k) for k in range(groups[n].count)]
    return out


def _lines(node) -> dict[str, int]:
    """Field path (`devices[0].count`, `devices[0]`, `links`) -> its 1-based YAML line."""
    out: dict[str, int] = {}

    def walk(n, path: str) -> None:
        if isinstance(n, yaml.MappingNode):
            for k, v in n.value:
                key = f"{path}.{k.value}" if path else str(k.value)
                out[key] = k.start_mark.line + 1
                out[f"{key}="] = v.start_mark.line + 1
                walk(v, key)
        elif isinstance(n, yaml.SequenceNode):
            for i, v in enumerate(n.value):
                out[f"{path}[{i}]"] = v.start_mark.line + 1
                walk(v, f"{path}[{i}]")

    if node is not None:
        walk(node, "")
    return out


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
    """Field readers whose errors name the file, the line and the field."""

    def __init__(self, path: Path, lines: dict[str, int] | None = None):
        self.path, self.lines = path, lines or {}

    def error(self, field: str, msg: str) -> AgentError:
        line = self.lines.get(field) or self.lines.get(field.split(".")[0]) or 0
        if not line:  # a field that is absent: the line of the mapping that lacks it
            line = self.lines.get(field.rsplit(".", 1)[0], 0) if "." in field else 0
        at = f":{line}" if line else ""
        return AgentError(f"{self.path}{at}: {field}: {msg}" if field else f"{self.path}{at}: {msg}")

    def known_keys(self, d: dict, at: str = "", schema: str | None = None) -> None:
        """Every key of mapping `d` (at field path `at`) is one agentc reads: a misspelt key
        would otherwise be ignored and a default used."""
        known = KEYS[schema if schema is not None else at]
        for key in d:
            if key not in known:
                near = difflib.get_close_matches(str(key), known, n=1)
                hint = f"; did you mean '{near[0]}'?" if near else ""
                field = f"{at}.{key}" if at else str(key)
                raise self.error(field, f"unknown key '{key}' (known: {', '.join(known)}){hint}")

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
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise self.error(f"{at}.{key}", f"expected a finite number, got {v!r}")
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
