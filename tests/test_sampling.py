"""Token choice: greedy picks what argmax picks (the first maximum); sampling draws from
the distribution transformers' warpers define, reproducibly from a seed."""

import numpy as np
import pytest
import torch

from agentc.models.sampling import greedy


def test_greedy_is_argmax_including_ties():
    rng = np.random.default_rng(0)
    for v in (7, 1000, 49152):
        logits = rng.standard_normal((1, v)).astype(np.float32)
        assert greedy(torch.from_numpy(logits)).item() == int(np.argmax(logits))
    tied = np.zeros((1, 10), np.float32)
    tied[0, [3, 7]] = 5.0
    assert greedy(torch.from_numpy(tied)).item() == 3  # the first of equal maxima, as np.argmax
    assert greedy(torch.from_numpy(tied)).dtype == torch.int32


SETTINGS = [(1.0, 0, 1.0), (0.7, 50, 1.0), (1.0, 0, 0.9), (0.8, 40, 0.95)]


def _compiled_sampler(temperature, top_k, top_p, vocab):
    from agentc.bench.timing import Device
    from agentc.build.iree_compile import compile_module
    from agentc.devices import KINDS
    from agentc.models.export import export_function
    from agentc.models.sampling import sample

    def fn(logits, u):
        return sample(logits, u, temperature, top_k, top_p)

    args = [np.zeros((1, vocab), np.float32), np.zeros((1,), np.float32)]
    text = export_function(fn, args, "sampler", [], {"test": "sampler", "t": temperature, "k": top_k, "p": top_p})
    kind = KINDS["cpu"]
    vmfb, _ = compile_module(text, kind.target, kind.compile_flags, "cpu")
    return Device(kind.driver, kind.staged_readback), vmfb


@pytest.mark.parametrize("temperature, top_k, top_p", SETTINGS)
def test_sampling_kernel_draws_from_transformers_distribution(temperature, top_k, top_p):
    """The sampler compiled by IREE, at 300 evenly spaced uniform draws over a fixed logit
    vector, picks what the inverse CDF of transformers' warped distribution (temperature,
    top-k, top-p; computed by sorting, in float64) picks, up to float32 rounding at the
    boundaries (which moves a few of the full vocabulary's 49,152 narrow intervals by a
    neighbour); and 3,000 random draws follow that distribution (total variation distance)."""
    from agentc.models.sampling import reference_probabilities

    rng = np.random.default_rng(0)
    logits = (rng.standard_normal((1, 49152)) * 3).astype(np.float32)
    probs = reference_probabilities(logits, temperature, top_k, top_p)
    cdf = np.cumsum(probs)
    dev, vmfb = _compiled_sampler(temperature, top_k, top_p, logits.shape[1])
    us = (np.arange(300) + 0.5) / 300
    got, draws = _draws(dev, vmfb, logits, us), np.array(_draws(dev, vmfb, logits, rng.random(3000)))
    want = np.minimum(np.searchsorted(cdf, us * cdf[-1], side="right"), len(cdf) - 1)
    # float32 running sums (over blocks of 256) may move a draw that falls within ~2e-5 of a
    # boundary between two tokens to its neighbour: each draw lies in its token's CDF
    # interval up to that.
    lo, hi = np.concatenate([[0.0], cdf])[got], cdf[got]
    assert np.all((lo - 5e-5 <= us) & (us <= hi + 5e-5))
    assert np.mean(np.array(got) == want) >= 0.95
    assert probs[draws].min() > 0  # never a token the warpers removed
    support = np.flatnonzero(probs)
    if len(support) <= 60:  # few tokens: the empirical distribution itself
        freq = np.bincount(draws, minlength=len(probs))[support] / len(draws)
        assert 0.5 * np.abs(freq - probs[support]).sum() < 0.06


def _draws(dev, vmfb, logits, us) -> list[int]:
    fn = dev.load(vmfb, "sampler")
    x = dev.upload(logits)
    out = []
    for u in us:
        r = fn(x, dev.upload(np.asarray([u], np.float32)))
        out.append(int(dev.readback(r[0] if isinstance(r, (list, tuple)) else r)[0]))
    return out


def test_seeded_uniforms_repeat_and_differ():
    from agentc.models.sampling import uniform

    a = [uniform(7, i) for i in range(8)]
    assert a == [uniform(7, i) for i in range(8)]
    assert a != [uniform(8, i) for i in range(8)]
    assert all(0 <= u < 1 for u in a) and len(set(a)) == 8
