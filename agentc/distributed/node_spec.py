"""What a Ray node tells agentc about itself: the agentc devices it has, as custom resources
(so that an actor can be pinned to a node with a device by asking for it), and its link
facts, as node labels (strings, not consumed by anyone).

    agentc.node.<label>        1   the node's agentc name (n1, n2, ... for `agentc ray up`)
    agentc.<kind>              1   per device kind it has: cpu, vulkan, cuda
    agentc.type.<hardware id>  1   the catalog entry that prices it (agentc/cost/hardware.yaml;
                                   a kind name, e.g. agentc.type.cpu, means this machine's
                                   calibrated profile of that kind, agentc/cost/catalog.yaml)
    agentc.host                1   a node without devices: host work only

Labels: `agentc.kinds` ("cpu=cpu,vulkan=lavapipe": kind=type pairs), `agentc.net_us` and
`agentc.net_gbps` (the node's network to other nodes: latency per message, bandwidth).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from agentc.devices import KINDS

PREFIX = "agentc."
NODE = PREFIX + "node."
TYPE = PREFIX + "type."
HOST = PREFIX + "host"
KINDS_LABEL = PREFIX + "kinds"
NET_US, NET_GBPS = PREFIX + "net_us", PREFIX + "net_gbps"
# Between two nodes of one machine, Ray moves a 1x384 float32 array actor to actor in ~1.5 ms
# (`agentc bench ray`'s bare chain); bandwidth: a conservative 10 Gbit/s network.
DEFAULT_NET_US, DEFAULT_NET_GBPS = 1500.0, 1.25
LOGICAL_COUNT = 1000.0  # an emulated device type: as many replicas as asked for
_LABEL = re.compile(r"^[A-Za-z0-9_-]+$")


class NodeSpecError(ValueError):
    """A --node value is wrong; the message names it."""


@dataclass(frozen=True)
class NodeSpec:
    label: str
    kinds: dict[str, str] = field(default_factory=dict)  # device kind -> catalog type
    net_us: float = DEFAULT_NET_US
    net_gbps: float = DEFAULT_NET_GBPS
    logical: tuple[str, ...] = ()  # catalog types advertised without the device (emulated serving)

    def resources(self) -> dict[str, float]:
        res = {NODE + self.label: 1.0}
        for kind, hw in self.kinds.items():
            res[PREFIX + kind] = 1.0
            res[TYPE + hw] = res.get(TYPE + hw, 0.0) + 1.0
        if not self.kinds:
            res[HOST] = 1.0
        for hw in self.logical:
            res[TYPE + hw] = max(res.get(TYPE + hw, 0.0), LOGICAL_COUNT)
        return res

    def labels(self) -> dict[str, str]:
        return {KINDS_LABEL: ",".join(f"{k}={t}" for k, t in self.kinds.items()),
                NET_US: f"{self.net_us:g}", NET_GBPS: f"{self.net_gbps:g}"}

    def describe(self) -> str:
        return ",".join(self.kinds) or "host"


def parse_node(text: str, label: str) -> NodeSpec:
    """`cpu,vulkan`, `host`, `cuda=nvidia-h100-sxm` (kind=catalog type) -> a NodeSpec."""
    if not isinstance(text, str) or not text.strip():
        raise NodeSpecError(f"--node: expected device kinds (e.g. cpu,vulkan) or 'host', got {text!r}")
    if not _LABEL.match(label):
        raise NodeSpecError(f"--name: a node name is letters, digits, '_' and '-', got {label!r}")
    kinds: dict[str, str] = {}
    for part in (p.strip() for p in text.split(",")):
        kind, _, hw = part.partition("=")
        if part == "host":
            continue
        if kind not in KINDS:
            raise NodeSpecError(f"--node {text}: unknown device kind '{kind}' (known: {', '.join(KINDS)}, host)")
        if kind in kinds:
            raise NodeSpecError(f"--node {text}: '{kind}' given twice")
        kinds[kind] = hw or kind
    return NodeSpec(label, kinds)


def from_ray_node(node: dict) -> NodeSpec | None:
    """The NodeSpec a node of `ray.nodes()` advertises; None for a node without agentc's
    resources (not started for agentc)."""
    res = node.get("Resources", {})
    labels = [k[len(NODE):] for k in res if k.startswith(NODE)]
    if not labels:
        return None
    tags = node.get("Labels") or {}
    kinds = {}
    for pair in filter(None, tags.get(KINDS_LABEL, "").split(",")):
        kind, _, hw = pair.partition("=")
        kinds[kind] = hw or kind
    for kind in KINDS:  # a node started by hand may give resources without the label
        if PREFIX + kind in res and kind not in kinds:
            kinds[kind] = kind
    return NodeSpec(labels[0], kinds, float(tags.get(NET_US, DEFAULT_NET_US)),
                    float(tags.get(NET_GBPS, DEFAULT_NET_GBPS)))


def ray_start_args(spec: NodeSpec) -> list[str]:
    """The `ray start` flags that make a node advertise `spec` (for machines started by hand:
    `agentc ray flags --node cuda=nvidia-h100-sxm --name gpu-box`)."""
    return ["--resources", json.dumps(spec.resources(), separators=(",", ":")),
            "--labels", json.dumps(spec.labels(), separators=(",", ":"))]
