"""Top-k as plain linalg: the k best indices of each row, by k rounds of argmax-and-mask
(no sort op, which IREE's linalg input does not take). Vector search and rerankers use it."""

from __future__ import annotations

from agentc.lazy import lazy_import

torch = lazy_import("torch")


def top_k(scores, k: int):
    """The k best indices per row (B, N) -> (B, k) int32; ties go to the lower index."""
    slots = torch.arange(scores.shape[-1], dtype=torch.int32)
    picked = []
    for _ in range(k):
        i = torch.argmax(scores, dim=-1).to(torch.int32)
        picked.append(i)
        scores = torch.where(slots[None, :] == i[:, None], float("-inf"), scores)
    return torch.stack(picked, dim=-1)
