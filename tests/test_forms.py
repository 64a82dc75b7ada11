"""Computations written more than one way (agentc.models.forms) agree with PyTorch."""

import torch

from agentc.models.forms import linear


def test_linear_forms_agree_with_pytorch():
    """Every linear form computes F.linear, with and without bias, for one sequence and for
    a batch of them, of many rows and of one (a decode step's)."""
    g = torch.Generator().manual_seed(0)
    for form in ("transposed", "transposed_row_reduce"):
        for batch, rows in ((1, 7), (3, 7), (1, 1), (3, 1)):
            x, w, b = (torch.randn(batch, rows, 12, generator=g), torch.randn(5, 12, generator=g),
                       torch.randn(5, generator=g))
            want = torch.nn.functional.linear(x, w, b)
            assert torch.allclose(linear(x, w, b, form), want, atol=1e-5), (form, batch, rows)
            assert torch.allclose(linear(x, w, None, form), want - b, atol=1e-5), (form, batch, rows)


def test_a_misspelled_runtime_form_is_an_error_naming_the_entry():
    """A RUNTIME_FORMS entry that sets an attribute no form has, or a form to a value it
    does not take, would otherwise export the default form for that runtime unnoticed."""
    import pytest

    from agentc.models.forms import FormError
    from agentc.models.hf.causal_lm import CausalLM
    from agentc.models.hf.encoder_lm import Encoder
    from agentc.models.kernels import _forms

    for model in (Encoder, CausalLM):  # the shipped entries are forms
        assert _forms(model.__new__(model), None) == model.RUNTIME_FORMS
    bad = CausalLM.__new__(CausalLM)
    bad.RUNTIME_FORMS = {"cuda": {"linear_fom": "transposed"}}
    with pytest.raises(FormError, match=r"CausalLM.RUNTIME_FORMS\['cuda'\]: 'linear_fom' is not a form"):
        _forms(bad, None)
    bad.RUNTIME_FORMS = {"cuda": {"decode_attention": "per-head"}}
    with pytest.raises(FormError, match=r"\['decode_attention'\]: 'per-head' is not one of grouped, per_head"):
        _forms(bad, None)
    assert _forms(bad, ["cpu"]) == {}  # a runtime the build lacks is not exported
    with pytest.raises(FormError, match="form 'transpose' is not one of linear, transposed, transposed_row_reduce"):
        linear(torch.zeros(1, 2, 3), torch.zeros(4, 3), form="transpose")


def test_imported_models_in_their_cuda_forms_compute_the_same():
    """An imported model runs transformers' code in a runtime's forms (agentc.models.forms
    `applied`): under the CUDA forms (transposed linears, per-head decode attention) its
    layer operators give what they give in the default forms, and the forms reach the
    export (the CUDA variants differ from the default kernels)."""
    import tempfile
    from pathlib import Path

    import numpy as np

    from agentc.models import forms, kernels, registry
    from agentc.models.hf import random_checkpoint as rc

    with tempfile.TemporaryDirectory() as tmp:
        for arch in ("llama", "qwen2", "gpt2"):
            m = registry.decoder(str(rc.write(arch, Path(tmp) / arch, rc.TINY)))
            cuda = forms.in_form(m, m.RUNTIME_FORMS["cuda"])
            c = m.config
            w = [torch.from_numpy(np.array(a)) for a in m.groups[f"{c.name}/l0"].values()]
            g = torch.Generator().manual_seed(0)
            x = torch.randn(1, c.prompt_len, c.dim, generator=g)
            pe = [torch.from_numpy(a) for a in m.position_examples(c.prompt_len)]
            with torch.no_grad():
                for got, want in zip(cuda.block_prefill(*w, x, *pe), m.block_prefill(*w, x, *pe)):
                    assert _close(got, want), arch
                _, k, v = m.block_prefill(*w, x, *pe)
                pos = torch.tensor([5], dtype=torch.int32)
                pe1 = [torch.from_numpy(a[:, 5:6]) for a in m.position_examples(c.prompt_len)]
                step = (x[:, :1], *pe1, pos, k, v)
                for got, want in zip(cuda.block_decode(*w, *step), m.block_decode(*w, *step)):
                    assert _close(got, want), arch
            ks = {k.symbol.rsplit("__", 1)[1]: k for k in kernels.decoder_kernels(str(Path(tmp) / arch),
                                                                               runtimes=["cuda"])}
            # Every kernel with weights reads them in bfloat16 on cuda (agentc.models.half_weights),
            # and a decode step's single-row linears are multiply-and-sum reductions there.
            assert list(ks["decode_l0"].variants) == ["cuda"], arch
            assert ("bf16" in ks["decode_l0"].variants["cuda"]) and "bf16" not in _body(ks["decode_l0"].impl_text)
            assert list(ks["sample"].variants) == [], arch  # no weights: one form


def _close(got, want) -> bool:
    """Equal to float32 sums taken in another order: within 1e-5 of the output's scale."""
    return (got - want).abs().max().item() <= 1e-5 * max(1.0, want.abs().max().item())


def _body(text: str) -> str:
    """An exported function's body: the float32 forms declare the copies but never read them."""
    return text[text.index("{", text.index("func.func")):]


def test_decode_attention_forms_agree():
    """The per-head decode attention (cuda's) computes the grouped one's output for one
    query row, with grouped heads, a mask per sequence or per head, and a softcap."""
    from agentc.models.hf import attention

    g = torch.Generator().manual_seed(0)
    B, Hq, Hkv, K, D = 2, 6, 2, 9, 4
    q, k, v = torch.randn(B, Hq, 1, D, generator=g), torch.randn(B, Hkv, K, D, generator=g), \
        torch.randn(B, Hkv, K, D, generator=g)
    for mask in (torch.where(torch.rand(B, 1, 1, K, generator=g) > 0.3, 0.0, float("-inf")),
                 torch.where(torch.rand(B, Hq, 1, K, generator=g) > 0.3, 0.0, float("-inf"))):
        mask[..., 0] = 0.0  # every row attends somewhere
        for softcap in (None, 5.0):
            want, _ = attention.attention(None, q, k, v, mask, softcap=softcap)
            with attention.form("per_head"):
                got, _ = attention.attention(None, q, k, v, mask, softcap=softcap)
            assert _close(got, want), (mask.shape, softcap)


def test_runtimes_that_read_different_weight_copies_are_an_error():
    """The copies of a kernel's weights are one set that every form takes: two runtimes
    asking for different ones (bfloat16, or float32 stacks) is a mistake named up front."""
    import pytest

    from agentc.models.forms import FormError
    from agentc.models.kernels import _copy_forms

    assert _copy_forms({"cuda": {"weight_dtype": "bfloat16", "projections": "fused"}, "cpu": {}}) == \
        ({"cuda"}, (True, "bfloat16"))
    assert _copy_forms({"cpu": {"linear_form": "transposed"}}) == (set(), (False, "float32"))
    with pytest.raises(FormError, match=r"runtimes cuda, vulkan read different weight copies .*"
                                        r"cuda: stack=False, bfloat16.*vulkan: stack=True, float32"):
        _copy_forms({"cuda": {"weight_dtype": "bfloat16"}, "vulkan": {"projections": "fused"}})


def test_stacked_projections_are_one_product_per_input(monkeypatch):
    """Under `projections: fused`, q/k/v weights that are row slices of one stack
    (agentc.models.fused_projections) are answered from one product per input, each with its
    own rows and bias, equal to PyTorch's three products; other weights stay products of their own."""
    from agentc.models import forms, fused_projections

    g = torch.Generator().manual_seed(0)
    wq, wk, wv, wo = (torch.randn(r, 4, generator=g) for r in (6, 2, 2, 4))
    bq, bk = torch.randn(6, generator=g), torch.randn(2, generator=g)
    x1, x2 = torch.randn(1, 3, 4, generator=g), torch.randn(1, 1, 4, generator=g)
    names = ["self_attn.q_proj.weight", "self_attn.k_proj.weight", "self_attn.v_proj.weight", "self_attn.o_proj.weight"]
    weights = [torch.zeros_like(w) for w in (wq, wk, wv)] + [wo]  # the stack's slices take their places
    stack = {"self_attn.q_proj.weight+k_proj.weight+v_proj.weight": torch.cat([wq, wk, wv])}
    products = []
    real = forms.linear
    monkeypatch.setattr(forms, "linear", lambda x, w, b=None, form="linear": products.append(w.shape) or real(x, w, b, form))
    F = torch.nn.functional
    with fused_projections.sliced(weights, {n: i for i, n in enumerate(names)}, stack), \
            forms._linear_mode()("linear", True):
        got = [F.linear(x1, weights[0], bq), F.linear(x1, weights[1], bk), F.linear(x1, weights[2]),
               F.linear(x2, weights[1], bk), F.linear(x1, weights[3])]
    want = [x1 @ wq.T + bq, x1 @ wk.T + bk, x1 @ wv.T, x2 @ wk.T + bk, x1 @ wo.T]
    for a, b in zip(got, want):
        assert _close(a, b)
    assert products == [(10, 4), (10, 4), (4, 4)]  # x1's stack, x2's stack, the output projection
