"""The cluster a placement targets: which devices exist, what they cost, how they connect.

A cluster is either this machine (`local_cluster`: the usable devices `cpu`, `vulkan`,
`cuda`, with the rates of agentc/cost/catalog.yaml) or a YAML file:

    host: {threads: 8, node: n1}          # the host thread pool that runs host ops (and the
                                          # machine it is on, for devices that name theirs)
    devices:
      - type: a100-80gb                   # an id of agentc/cost/hardware.yaml, or cpu|vulkan|cuda
        name: a100                        # optional, defaults to the type
        count: 2                          # instances a100:0, a100:1 (one, named a100, if 1)
        cost_per_hour: 1.29               # optional; else the catalog's on-demand price, or
        # capex_usd: 15000, years: 4, power_usd_per_kwh: 0.12   (capex + power at TDP)
        reserve_usd_per_request: 0.0      # optional: charged once per request that uses it
        host_link: {latency_us: 10, bandwidth_gbps: 25}   # optional; else the catalog's PCIe
                                          # (null: no path to the host)
        node: n2                          # optional: the machine it is on (a Ray node), when
                                          # not the host's: a cpu there shares no memory with it
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
import functools
from collections.abc import Callable
from dataclasses import dataclass, field

from agentc.cost.catalog import Catalog, DeviceSpec, load_catalog
from agentc.devices import KINDS
from agentc.frontend.graph import AgentError

HOURS_PER_YEAR = 8766.0
PCIE_LATENCY_S = 1.0e-5  # per transfer, when the cluster file gives none
# Per-direction x16 rates of each PCIe generation (PCI-SIG: 8, 16, 32 GT/s per lane with
# 128b/130b encoding), for catalog entries that name the link but state no bandwidth.
PCIE_X16_BYTES_PER_S = {"pcie3x16": 15.75e9, "pcie4x16": 31.5e9, "pcie5x16": 63.0e9}


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
    node: str | None = None  # the machine it is on (a Ray node's agentc name); None: the host's


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
    node: str | None = None  # the machine its devices are on (agentc/distributed); None: the host's

    def instance(self, k: int) -> str:
        return self.name if self.count == 1 else f"{self.name}:{k}"

    def device(self, k: int) -> ClusterDevice:
        return ClusterDevice(self.instance(k), self.type, self.name, self.runtime, self.spec,
                             self.reserve_cost, self.host_link, self.node)

    def likeness(self) -> tuple:
        """Groups with equal likeness are interchangeable: same rates, prices and links."""
        return (self.type, self.runtime, self.spec, self.reserve_cost, self.host_link, self.links, self.node)


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
        if d not in catalog.devices or d not in KINDS:
            raise AgentError(f"--devices: unknown device '{d}' (known: {', '.join(KINDS)})")
        spec = KINDS[d].spec(catalog)  # the kind's cost hook
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


