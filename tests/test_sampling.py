"""Greedy sampling (agentc.models.sampling.greedy) picks what argmax picks: the first maximum."""

import numpy as np
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
