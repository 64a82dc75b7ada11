"""One computation written more than one way, because IREE compiles the ways differently
per runtime. A model names the form each runtime gets (`RUNTIME_FORMS`, attributes set
while a kernel is exported again for that runtime: agentc.models.kernels), and measures why in a
bench script that compares the forms on each target side by side."""

from __future__ import annotations

import functools

from agentc.lazy import lazy_import

torch = lazy_import("torch")


# The forms a model attribute may take (its first value is the default one): a runtime's
# RUNTIME_FORMS entry outside these is a mistake, caught when its kernels are exported.
FORMS = {"linear_form": ("linear", "transposed", "transposed_row_reduce"),  # `linear` below
         "decode_attention": ("grouped", "per_head"),  # agentc.models.hf.attention
         "weight_dtype": ("float32", "bfloat16"),  # agentc.models.half_weights
         "projections": ("separate", "fused")}  # agentc.models.fused_projections


class FormError(ValueError):
    pass


def check(owner: str, runtime: str, attrs: dict) -> None:
    """Raise FormError naming `owner`'s RUNTIME_FORMS entry for `runtime` where it sets an
    attribute that is not a form, or a form to a value it does not take."""
    for name, value in attrs.items():
        if name not in FORMS:
            raise FormError(f"{owner}.RUNTIME_FORMS[{runtime!r}]: {name!r} is not a form "
                            f"({', '.join(FORMS)})")
        if value not in FORMS[name]:
            raise FormError(f"{owner}.RUNTIME_FORMS[{runtime!r}][{name!r}]: {value!r} is not "
                            f"one of {', '.join(FORMS[name])}")


def in_form(model, attrs: dict):
    """A shallow copy of `model` with a runtime's form attributes set (its RUNTIME_FORMS entry):
    the registry's model is not touched."""
    import copy

    clone = copy.copy(model)
    for name, value in attrs.items():
        setattr(clone, name, value)
    return clone


def linear(x, w, b=None, form: str = "linear"):
    """y = x @ w^T + b for x (B, T, in) and w (out, in), PyTorch's layout.

    `transposed` computes (w @ x^T)^T: the output features become the rows, which IREE's
    CUDA code generation spreads over many more workgroups. On an H200 (experiments/kernel-forms/linear_forms.py)
    64 x 384 -> 384 takes 173 instead of 334 us and 192 x 576 -> 3072 220 instead of 965 us;
    on a CPU it is equal or up to 5% slower. A single row (decode) stays a plain product.

    `transposed_row_reduce` is `transposed` for many rows; a single row becomes a multiply and
    a sum over the input features, which IREE forms as a matrix-vector reduction (what
    `--iree-opt-generalize-matmul` does to every product, where it slows the many-row ones
    2-3x: docs/results/decode/README.md) instead of a one-row matmul."""
    if form not in FORMS["linear_form"]:
        raise FormError(f"forms.linear: form {form!r} is not one of {', '.join(FORMS['linear_form'])}")
    if form == "transposed_row_reduce" and x.shape[-2] == 1:
        y = (x[..., None, :] * w).sum(-1)  # (B, 1, out, in) -> (B, 1, out)
        return y if b is None else y + b
    if form != "linear" and x.shape[-2] > 1:
        rows = x.reshape(-1, x.shape[-1])  # (B*T, in): one product for the whole batch
        y = (w @ rows.transpose(0, 1)).transpose(0, 1).reshape(*x.shape[:-1], w.shape[0])
        return y if b is None else y + b
    return torch.nn.functional.linear(x, w, b)


def applied(model):
    """A context in which transformers' modules run in `model`'s forms: every
    `torch.nn.functional.linear` call becomes `linear` in the model's `linear_form`, and
    attention takes its `decode_attention` form (agentc.models.hf.attention). For imported
    models, whose code is transformers' own and cannot name a form itself."""
    import contextlib

    from agentc.models.hf import attention

    stack = contextlib.ExitStack()
    stack.enter_context(attention.form(getattr(model, "decode_attention", "grouped")))
    fused = getattr(model, "projections", "separate") == "fused"
    if getattr(model, "linear_form", "linear") != "linear" or fused:
        stack.enter_context(_linear_mode()(getattr(model, "linear_form", "linear"), fused))
    return stack


@functools.cache
def _linear_mode():
    """A TorchFunctionMode class rewriting F.linear into `linear(..., form)`; made on first
    use, as torch is imported lazily. Inside its handler the mode is off, so the products
    `linear` makes are not rewritten again."""
    from torch.overrides import TorchFunctionMode

    class LinearForm(TorchFunctionMode):
        def __init__(self, form: str, fused: bool = False):
            super().__init__()
            self.form = form
            self.fuser = None
            if fused:
                from agentc.models.fused_projections import Fuser

                self.fuser = Fuser()

        def __torch_function__(self, func, types, args=(), kwargs=None):
            if func is torch.nn.functional.linear:
                call = dict(zip(("input", "weight", "bias"), args), **(kwargs or {}))
                x, w, b = call["input"], call["weight"], call.get("bias")
                fused = self.fuser and self.fuser.linear(x, w, b, lambda x, ws: linear(x, ws, form=self.form))
                return fused if fused is not None else linear(x, w, b, form=self.form)
            return func(*args, **(kwargs or {}))

    return LinearForm
