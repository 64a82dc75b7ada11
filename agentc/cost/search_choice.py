"""search="auto": exact search on a device or approximate search on the host, whichever
the cost model says answers sooner, among approximate indexes recalling enough.

Exact search is priced like every kernel (the roofline of its similarity and top-k
kernels on the fastest listed device that can hold the corpus); approximate search by its
latency and recall@k measured at compile time (agentc.frontend.ann_index). The placer then
places whichever was chosen.
"""

from __future__ import annotations

from dataclasses import dataclass

from agentc.cost.estimate import estimate
from agentc.ir.lower import Lowered
from agentc.placement.cluster import Cluster


@dataclass(frozen=True)
class SearchChoice:
    index: str
    choice: str  # "exact" or "ann"
    exact_ms: float  # predicted, on `device`
    device: str
    ann_ms: float  # measured here
    recall: float

    def describe(self) -> str:
        return (f"index '{self.index}': search auto -> {self.choice} (exact {self.exact_ms:.3f} ms predicted on "
                f"{self.device}; approximate {self.ann_ms:.3f} ms measured, recall {self.recall:.3f})")


def choose(low: Lowered, cluster: Cluster) -> list[SearchChoice]:
    """A choice per index with search="auto" (lowered exact); [] if there is none."""
    from agentc.frontend import ann_index

    auto = {n: idx for n, idx in low.graph.indexes.items() if idx.search == "auto"}
    if not auto:
        return []
    call_times, _ = estimate(low, cluster.trimmed(lambda groups: 1))
    out = []
    for name, idx in auto.items():
        nodes = [n for n in low.graph.all_nodes() if n.op == "vector_search" and n.attrs.get("index") == name]
        prefixes = tuple(f"{n.name}/" for n in nodes)
        ops = [op for op in low.ops if op.kind == "call" and op.name.startswith(prefixes)]
        devices = set.intersection(*(set(call_times[op.callee]) for op in ops))
        device = min(devices, key=lambda d: sum(call_times[op.callee][d] for op in ops))
        exact_ms = sum(call_times[op.callee][device] for op in ops) / len(nodes) * 1e3
        m = ann_index.measure(idx.ann_bytes, max(n.attrs["k"] for n in nodes))
        ann = m.latency_ms < exact_ms and m.recall >= idx.min_recall
        out.append(SearchChoice(name, "ann" if ann else "exact", exact_ms, device, m.latency_ms, m.recall))
    return out
