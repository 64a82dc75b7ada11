"""Greedy sampling as an operator body that compiles to fast GPU code.

`torch.argmax` lowers to one reduction with two results (value and index). IREE's GPU
code generation ran that over SmolLM's 49,152 logits at ~2.4 ms per call on an H200
(experiments/rag-pipeline/gpu_models.py --trace), 16% of a request. Two single-result reductions, the maximum
and then the lowest index holding it, pick the same token (argmax returns the first
maximum) and lower to the parallel reductions IREE handles well. The index reduction runs
in float32 (exact below 2**24): an int32 min-reduction of the same shape returned -1 on CUDA
with IREE 3.13.
"""

from __future__ import annotations

from agentc.lazy import lazy_import

torch = lazy_import("torch")


def greedy(logits):
    """(1, V) logits -> (1,) int32: the index of the first maximum, as torch.argmax."""
    v = logits.shape[-1]
    top = logits.amax(dim=-1, keepdim=True)
    index = torch.arange(v, dtype=torch.float32)
    return torch.where(logits == top, index, float(v - 1)).amin(dim=-1).to(torch.int32)
