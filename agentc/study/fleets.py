"""The fleets the study searches: device types by generation and vendor, and the families
(sets of types a fleet may mix) built from them. A family fixes which types may appear; the
search (agentc/study/search.py) chooses how many of each and which calls go where.

Generations follow the issue that asked for the study: the newest NVIDIA data-centre GPUs
(Hopper, Blackwell), older ones (Turing, Volta, Ampere, and the L4, an inference part the
same study lists with them), and other vendors' accelerators. CPU servers (this machine's
CPU, its measured profile) may join any family.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

NEWEST = ("nvidia-h100-sxm", "nvidia-h200-sxm", "nvidia-b200")
OLDER = ("nvidia-t4", "nvidia-v100-sxm2-16gb", "nvidia-a10g", "nvidia-a10", "nvidia-l4", "nvidia-a100-40gb-sxm",
         "nvidia-a100-80gb-sxm")
OTHER = ("amd-mi300x", "intel-gaudi-3")
CPU = "this-machine-cpu"
TYPES = NEWEST + OLDER + OTHER + (CPU,)

SHORT = {"nvidia-h100-sxm": "H100", "nvidia-h200-sxm": "H200", "nvidia-b200": "B200", "nvidia-t4": "T4",
         "nvidia-v100-sxm2-16gb": "V100", "nvidia-a10g": "A10G", "nvidia-a10": "A10", "nvidia-l4": "L4",
         "nvidia-a100-40gb-sxm": "A100-40", "nvidia-a100-80gb-sxm": "A100-80", "amd-mi300x": "MI300X",
         "intel-gaudi-3": "Gaudi3", CPU: "CPU"}

# Families by what they stand for in the comparison.
NEWEST_ONLY, OLDER_ONLY, MIXED, OTHER_VENDOR = "newest only", "older only", "older + newest", "other vendor"


@dataclass(frozen=True)
class Family:
    name: str
    category: str
    types: tuple[str, ...]  # accelerators, then the CPU servers where the family has them


def families() -> list[Family]:
    """Every family, each with and without CPU servers."""
    groups: list[tuple[str, tuple[str, ...]]] = []
    groups += [(NEWEST_ONLY, (n,)) for n in NEWEST] + [(NEWEST_ONLY, NEWEST)]
    groups += [(OLDER_ONLY, (o,)) for o in OLDER] + [(OLDER_ONLY, OLDER)]
    groups += [(MIXED, (o, n)) for o, n in itertools.product(OLDER, NEWEST)]
    groups += [(OTHER_VENDOR, (x,)) for x in OTHER]
    groups += [(OTHER_VENDOR, (o, x)) for o, x in itertools.product(OLDER, OTHER)]
    groups += [(OTHER_VENDOR, (x, n)) for x, n in itertools.product(OTHER, NEWEST)]
    out = []
    for category, types in groups:
        base = "+".join(SHORT[t] for t in types) if len(types) < 3 else f"all {category}"
        out.append(Family(base, category, types))
        out.append(Family(base + "+CPU", category, types + (CPU,)))
    return out


# What a fleet is, by the devices it uses (not the family it was searched in).
USES_NEWEST, USES_OLDER, USES_OTHER, USES_CPU = "newest GPUs", "older GPUs", "other vendor", "CPU servers only"
HETERO_NV, HETERO_OTHER, MINOR = "older + newest", "heterogeneous with other vendors", "mixed, <10%"
HETERO = (HETERO_NV, HETERO_OTHER)
KINDS = (USES_NEWEST, USES_OLDER, USES_OTHER, USES_CPU, HETERO_NV, HETERO_OTHER, MINOR)


def group(t: str) -> str:
    return "newest" if t in NEWEST else "older" if t in OLDER else "other" if t in OTHER else "cpu"


def kind_of(busy: dict[str, float]) -> str:
    """A fleet's kind from the busy time per device type it carries (CPU servers may join
    any kind): one group of accelerators (newest, older, other vendors), or heterogeneous:
    two groups or more, with the older GPUs and other vendors' devices carrying at least 10%
    of the busy time (less: MINOR, compared with neither side)."""
    groups = {group(t) for t, b in busy.items() if b > 0} - {"cpu"}
    if not groups:
        return USES_CPU
    if len(groups) == 1:
        return {"newest": USES_NEWEST, "older": USES_OLDER, "other": USES_OTHER}[groups.pop()]
    total = sum(busy.values())
    share = sum(b for t, b in busy.items() if group(t) in ("older", "other")) / total
    if share < 0.10:
        return MINOR
    return HETERO_NV if groups == {"older", "newest"} else HETERO_OTHER
