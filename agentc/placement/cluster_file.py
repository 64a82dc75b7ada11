"""Reading a cluster file (the YAML `agentc/placement/cluster.py` describes) into a Cluster: every
error names the file, the line and the field at fault, a misspelt key with the nearest
valid one; entries without a name of one type merge into one group."""

from __future__ import annotations

import dataclasses
import difflib
import math
from pathlib import Path

import yaml

from agentc.cost.catalog import Catalog, DeviceSpec, load_catalog
from agentc.frontend.graph import AgentError
from agentc.placement.cluster import (
    HOURS_PER_YEAR,
    PCIE_LATENCY_S,
    PCIE_X16_BYTES_PER_S,
    PINNED_LIMIT,
    Cluster,
    DeviceGroup,
    GroupLinks,
)

MAX_DEVICES = 1_000_000  # devices of one cluster file; counts are free, a typo like 1e12 is not
ENTRY_KEYS = ("type", "name", "count", "cost_per_hour", "capex_usd", "years", "power_usd_per_kwh",
              "reserve_usd_per_request", "host_link", "node")
KEYS = {"": ("host", "devices", "links"), "host": ("threads", "node"), "devices[]": ENTRY_KEYS,
        "devices[].host_link": ("latency_us", "bandwidth_gbps"),
        "links[]": ("between", "latency_us", "bandwidth_gbps")}



def load_cluster(path: str | Path, catalog: Catalog | None = None) -> Cluster:
    """Parse a cluster YAML; errors name the file, the line and the field at fault."""
    from agentc.cost.hardware import HardwareError, load_hardware

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
            spec, runtime, link = _spec_from_hardware(hardware[dtype], catalog, hardware)
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
        machine = entry.get("node")
        if machine is not None and (not isinstance(machine, str) or not machine):
            raise where.error(f"{at}.node", f"expected a machine name, got {machine!r}")
        entries.append((at, DeviceGroup(name, dtype, runtime, dataclasses.replace(spec, cost_per_hour=rate),
                                        reserve, link, count, node=machine)))
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
    groups = _on_nodes(groups, host.get("node"))
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
        for x in _instances(ka, a, groups, where, at):
            for y in _instances(kb, b, groups, where, at):
                if x != y:
                    instance_links[(x, y)] = instance_links[(y, x)] = lk
    return group_links, instance_links, sides


def _instances(kind: str, names: list[str], groups: dict[str, DeviceGroup], where: _Where, at: str) -> list[str]:
    if kind == "device":
        return names
    out = []
    for n in names:
        if groups[n].count > PINNED_LIMIT:
            raise where.error(f"{at}.between", f"links one device to group '{n}' of {groups[n].count} devices: "
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


def _on_nodes(groups: dict[str, DeviceGroup], host_node) -> dict[str, DeviceGroup]:
    """Memory is shared only on one machine: a device whose memory is the host's (a cpu) on
    another node gets that node's own memory space, so transfers to and from it are priced."""
    out = {}
    for n, g in groups.items():
        if g.node is not None and g.node != host_node and g.spec.memory_space == "host":
            g = dataclasses.replace(g, spec=dataclasses.replace(g.spec, memory_space=f"host@{g.node}"))
        out[n] = g
    return out


# The device each runtime's profile was measured on (its hardware id). A profile is fitted
# against its catalog entry's rates; another device of that runtime is priced at those rates
# times its datasheet's over the measured device's, so the measured device itself keeps them
# (scaling a profile to a device's datasheet rates alone priced this machine's CPU 4.5x faster
# than measured, and an H200 1.4x faster than the H200 it was measured on).
MEASURED_ON = {"cpu": "this-machine-cpu", "vulkan": "lavapipe", "cuda": "nvidia-h200-sxm"}


def _spec_from_hardware(hw, catalog: Catalog, hardware: dict) -> tuple[DeviceSpec, str | None, tuple | None]:
    """Datasheet rates (fp32: the kernels agentc exports are f32) with the efficiencies
    and overheads of the runtime that would drive the device."""
    runtime = hw.runtime if hw.runtime in catalog.devices else "cuda" if hw.kind != "cpu" else "cpu"
    base = catalog.devices[runtime]
    measured = hardware.get(MEASURED_ON.get(runtime, ""))
    if measured is not None:  # relative to the device the profile was measured on
        peak = base.peak_flops * hw.peak("fp32") / measured.peak("fp32")
        bandwidth = base.memory_bandwidth * hw.memory_bandwidth / measured.memory_bandwidth
    else:
        peak, bandwidth = hw.peak("fp32"), hw.memory_bandwidth
    here = hw.id == MEASURED_ON.get(runtime)
    dram = (base.dram_bandwidth if here else None) or hw.memory_bandwidth
    spec = dataclasses.replace(
        base, name=hw.id, peak_flops=peak, memory_bandwidth=bandwidth, dram_bandwidth=dram,
        memory_bytes=hw.memory_bytes, memory_space="host" if hw.kind == "cpu" else "", description=hw.name or hw.id,
        measured_as=runtime if here else "")
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
