"""Token choice as operator bodies that compile to fast device code: greedy, and sampling
with temperature, top-k and top-p from a uniform draw made on the host.

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


def _kth_largest(z, k: int):
    """The k-th largest value of each row (1, V): k rounds of max-and-mask (no sort op)."""
    top = z.amax(dim=-1, keepdim=True)
    for _ in range(k - 1):
        z = torch.where(z >= top, float("-inf"), z)
        top = z.amax(dim=-1, keepdim=True)
    return top


def _nucleus_floor(p, top_p: float, rounds: int = 48):
    """The smallest probability a top-p nucleus keeps: token t stays when the mass of tokens
    more probable than it is below top_p (transformers' TopPLogitsWarper, ties aside).
    That mass only grows as t's probability falls, so bisection on the probability finds
    the edge: `rounds` passes over the row instead of a sort."""
    lo = torch.zeros_like(p[..., :1])
    hi = p.amax(dim=-1, keepdim=True)
    for _ in range(rounds):
        mid = (lo + hi) * 0.5
        above = torch.where(p > mid, p, 0.0).sum(dim=-1, keepdim=True)
        keep = above < top_p  # a token of probability `mid` would be kept
        hi = torch.where(keep, mid, hi)
        lo = torch.where(keep, lo, mid)
    return hi


def _tri(n: int):
    return torch.ones(n, n).triu()  # tri[j, i] = 1 where j <= i: x @ tri is the running sum of x


def _inverse_cdf(q, u, block: int = 256):
    """The first index whose running sum of q (1, V) exceeds u * sum(q): the running sums
    are taken per block of 256 and over the blocks (two small triangular products, not a
    V x V one)."""
    V = q.shape[-1]
    nb = -(-V // block)
    qb = torch.nn.functional.pad(q, (0, nb * block - V)).reshape(nb, block)
    sums = qb.sum(dim=-1)  # (nb,)
    ends = sums[None] @ _tri(nb)  # (1, nb): mass up to the end of each block
    target = u.reshape(1, 1) * ends[:, -1:]
    b = (ends <= target).to(torch.int32).sum(dim=-1).clamp(max=nb - 1)  # (1,)
    row = torch.index_select(qb, 0, b)  # (1, block)
    before = torch.where(b > 0, torch.index_select(ends[0], 0, (b - 1).clamp(min=0)), 0.0)
    within = (row @ _tri(block) <= (target[:, 0] - before)[:, None]).to(torch.int32).sum(dim=-1)
    return b * block + within.clamp(max=block - 1)


def before_stop(text: str, stops) -> str:
    """The text up to the first occurrence of any of the stop strings (all of it if none)."""
    return text[:min((i for i in (text.find(s) for s in stops) if i >= 0), default=len(text))]


def uniform(seed: int, step: int) -> float:
    """The uniform draw in [0, 1) of sampling step `step`: a function of (seed, step), so a
    seeded generation repeats; fresh entropy when seed is -1. Rounded down below 1 in
    float32, the precision the device sees."""
    import numpy as np

    rng = np.random.default_rng() if seed < 0 else np.random.default_rng([seed, step])
    return min(float(rng.random()), 1.0 - 2.0**-24)


def sample(logits, u, temperature: float, top_k: int = 0, top_p: float = 1.0):
    """(1, V) logits and u (1,) uniform in [0, 1) -> (1,) int32, a draw from softmax(logits /
    temperature) restricted to the top_k most likely tokens (0: all) and then to the top_p
    nucleus (transformers' order: temperature, top-k, top-p). The draw is the inverse CDF at
    u, so a given u always picks the same token: reproducible from a seed."""
    z = logits / temperature
    if top_k:
        z = torch.where(z >= _kth_largest(z, top_k), z, float("-inf"))
    p = torch.softmax(z, dim=-1)
    if top_p < 1.0:
        p = torch.where(p >= _nucleus_floor(p, top_p), p, 0.0)
    t = _inverse_cdf(p, u)
    # p[t] as a masked sum (exact: one term is not zero), not a gather: inside a decode
    # chunk's loop IREE 3.13's CPU code generation fails on the gather's compare with 0
    # ('arith.cmpf' op requires all operands to have the same type).
    picked = torch.where(torch.arange(p.shape[-1]) == t, p, 0.0).sum(dim=-1)
    return torch.where(picked > 0, t, greedy(logits)).to(torch.int32)  # rounding at the very end: most likely


def reference_probabilities(logits, temperature: float, top_k: int = 0, top_p: float = 1.0):
    """The distribution `sample` draws from, computed as transformers' warpers compute it
    (sorting), in NumPy float64: the reference the tests compare `sample` with."""
    import numpy as np

    z = np.asarray(logits, np.float64).ravel() / temperature
    if top_k:
        z = np.where(z < np.sort(z)[-top_k], -np.inf, z)
    p = np.exp(z - z.max())
    p /= p.sum()
    if top_p < 1.0:
        order = np.argsort(p, kind="stable")  # ascending, as TopPLogitsWarper
        cum = np.cumsum(p[order])
        drop = order[cum <= 1 - top_p]
        drop = drop[:-1] if len(drop) == len(p) else drop  # keep at least one token
        p[drop] = 0.0
        p /= p.sum()
    return p
