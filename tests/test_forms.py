"""Computations written more than one way (agentc.models.forms) agree with PyTorch."""

import torch

from agentc.models.forms import linear


def test_linear_forms_agree_with_pytorch():
    """The transposed linear computes F.linear, with and without bias, for one sequence and
    for a batch of them."""
    g = torch.Generator().manual_seed(0)
    for batch in (1, 3):
        x, w, b = (torch.randn(batch, 7, 12, generator=g), torch.randn(5, 12, generator=g),
                   torch.randn(5, generator=g))
        want = torch.nn.functional.linear(x, w, b)
        assert torch.allclose(linear(x, w, b, "transposed"), want, atol=1e-5)
        assert torch.allclose(linear(x, w, None, "transposed"), want - b, atol=1e-5)


def test_a_misspelled_runtime_form_is_an_error_naming_the_entry():
    """A RUNTIME_FORMS entry that sets an attribute no form has, or a form to a value it
    does not take, would otherwise export the default form for that runtime unnoticed."""
    import pytest

    from agentc.models.forms import FormError
    from agentc.models.kernels import _forms
    from agentc.models.minilm import MiniLM
    from agentc.models.smollm import SmolLM

    for model in (MiniLM, SmolLM):  # the shipped entries are forms
        assert _forms(model.__new__(model), None) == model.RUNTIME_FORMS
    bad = SmolLM.__new__(SmolLM)
    bad.RUNTIME_FORMS = {"cuda": {"linear_fom": "transposed"}}
    with pytest.raises(FormError, match=r"SmolLM.RUNTIME_FORMS\['cuda'\]: 'linear_fom' is not a form"):
        _forms(bad, None)
    bad.RUNTIME_FORMS = {"cuda": {"decode_attention": "per-head"}}
    with pytest.raises(FormError, match=r"\['decode_attention'\]: 'per-head' is not one of grouped, per_head"):
        _forms(bad, None)
    assert _forms(bad, ["cpu"]) == {}  # a runtime the build lacks is not exported
    with pytest.raises(FormError, match="form 'transpose' is not one of linear, transposed"):
        linear(torch.zeros(1, 2, 3), torch.zeros(4, 3), form="transpose")
