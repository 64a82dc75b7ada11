"""A running Ray cluster as agentc sees it: the devices each live node advertises
(node_spec), listed (`agentc devices --ray`) or written as a cluster.yaml (`agentc cluster
from-ray`) so that placement plans for the machines that exist.

Devices are named `<node>.<kind>` (n2.vulkan). The host, where host operators and tools run,
is the driver (`agentc run --ray`), on the head node: devices on other nodes reach it, and
each other, over the network the nodes' labels describe; devices of one node use the
catalog's local links.
"""

from __future__ import annotations

from dataclasses import dataclass

import yaml

from agentc.cost.catalog import load_catalog
from agentc.distributed.node_spec import NodeSpec, from_ray_node


@dataclass(frozen=True)
class RayNode:
    spec: NodeSpec
    node_id: str
    ip: str
    head: bool

    def devices(self) -> dict[str, tuple[str, str]]:
        """device name -> (kind, catalog type)."""
        return {f"{self.spec.label}.{k}": (k, t) for k, t in self.spec.kinds.items()}


def ray_nodes(raw: list[dict]) -> list[RayNode]:
    """agentc's nodes among `ray.nodes()` entries (live ones), head first, then by name."""
    out = []
    for n in raw:
        spec = from_ray_node(n)
        if spec is not None and n.get("Alive"):
            out.append(RayNode(spec, n["NodeID"], n.get("NodeManagerAddress", "?"),
                               "node:__internal_head__" in n.get("Resources", {})))
    return sorted(out, key=lambda n: (not n.head, n.spec.label))


def table(nodes: list[RayNode], address: str) -> str:
    rows = [f"Ray cluster {address}: {len(nodes)} agentc node(s)",
            f"{'node':<8} {'ip':<15} {'device':<14} {'kind':<7} {'type':<22} {'network'}"]
    for n in nodes:
        role = " (head)" if n.head else ""
        devs = n.devices() or {f"{n.spec.label}.host": ("host", "-")}
        for name, (kind, hw) in devs.items():
            rows.append(f"{n.spec.label:<8} {n.ip:<15} {name:<14} {kind:<7} {hw:<22} "
                        f"{n.spec.net_us:g} us, {n.spec.net_gbps:g} GB/s{role}")
    return "\n".join(rows)


def cluster_yaml(nodes: list[RayNode], address: str, host_threads: int | None = None) -> str:
    """The cluster file placement reads (agentc/placement/cluster.py) for these nodes."""
    catalog = load_catalog()
    head = next((n for n in nodes if n.head), None)
    host_node = head.spec.label if head else None
    devices, links = [], []
    flat = [(n, name, kind, hw) for n in nodes for name, (kind, hw) in n.devices().items()]
    for n, name, kind, hw in flat:
        entry = {"name": name, "type": hw, "node": n.spec.label}
        if n.spec.label != host_node:
            entry["host_link"] = _net(n.spec, head.spec if head else n.spec)
        devices.append(entry)
    for i, (a, an, ak, _) in enumerate(flat):
        for b, bn, bk, _ in flat[i + 1:]:
            if a is b:
                sa = catalog.devices[ak].memory_space or ak
                sb = catalog.devices[bk].memory_space or bk
                lk = catalog.links.get((sa, sb)) or catalog.links.get((sb, sa))
                if lk:
                    links.append({"between": [an, bn], "latency_us": round(lk[0] * 1e6, 3),
                                  "bandwidth_gbps": round(lk[1] / 1e9, 3)})
            else:
                links.append({"between": [an, bn], **_net(a.spec, b.spec)})
    doc = {"host": {"threads": host_threads or catalog.host_threads, "node": host_node},
           "devices": devices}
    if links:
        doc["links"] = links
    head_line = (f"# The Ray cluster at {address} (agentc cluster from-ray): one device per agentc resource\n"
                 f"# of each live node. The host (the driver of agentc run --ray) is on {host_node}, the head.\n")
    return head_line + yaml.safe_dump(doc, sort_keys=False, default_flow_style=None, width=110)


def _net(a: NodeSpec, b: NodeSpec) -> dict:
    """The network between two nodes: the slower end's latency and bandwidth."""
    return {"latency_us": max(a.net_us, b.net_us), "bandwidth_gbps": min(a.net_gbps, b.net_gbps)}
