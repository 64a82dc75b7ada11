"""Computations written more than one way (agentc.models.forms) agree with PyTorch."""

import torch

from agentc.models.forms import linear


def test_linear_forms_agree_with_pytorch():
    """The transposed linear computes F.linear, with and without bias."""
    g = torch.Generator().manual_seed(0)
    x, w, b = (torch.randn(1, 7, 12, generator=g), torch.randn(5, 12, generator=g),
               torch.randn(5, generator=g))
    want = torch.nn.functional.linear(x, w, b)
    assert torch.allclose(linear(x, w, b, "transposed"), want, atol=1e-5)
    assert torch.allclose(linear(x, w, None, "transposed"), want - b, atol=1e-5)
