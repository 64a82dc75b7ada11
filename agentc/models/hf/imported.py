"""What every imported model shares: its weight groups read from the checkpoint, running
one of the architecture's modules with an operator's weight arguments, and its tokenizer."""

from __future__ import annotations

import functools
from typing import ClassVar

from agentc.lazy import lazy_import
from agentc.models import forms

torch = lazy_import("torch")


@functools.cache
def _parts_class():
    class Parts(torch.nn.Module):
        def __init__(self, modules: dict):
            super().__init__()
            for name, m in modules.items():
                self.add_module(name, m)

        def forward(self, fn, *acts):
            return fn(self, *acts)

    return Parts


def parts(modules: dict):
    """A module holding some of a model's modules under the given names, whose forward is
    `fn(self, *acts)`: `Imported.call_with` binds their weights, `fn` strings them together."""
    return _parts_class()(modules)


class Imported:
    # How a runtime's kernels are written (agentc.models.forms): each runtime's kernels are
    # exported again with these attributes set, and transformers' code runs in them.
    RUNTIME_FORMS: ClassVar[dict[str, dict[str, str]]] = {
        "cuda": {"decode_attention": "per_head", "linear_form": "transposed_row_reduce", "weight_dtype": "bfloat16",
                 "projections": "fused"}}
    decode_attention = "grouped"
    linear_form = "linear"
    projections = "separate"

    _base = None  # a variant shares its base model's weights

    @functools.cached_property
    def groups(self) -> dict:
        """Weight groups `{group: {param: float32 array}}`, views of the memory-mapped
        checkpoint where it stores float32 (see `_sources`)."""
        if self._base is not None:
            return self._base.groups
        return {g: self.ckpt.module_weights(m, name_of, prefix) for g, m, name_of, prefix in self._sources()}

    def call_with(self, module, names: list[str], weights, args: tuple, kwargs: dict | None = None):
        """`module(*args, **kwargs)` with its parameters and buffers `names` bound to `weights`
        (the operator's arguments: what torch.export records as the function's inputs), in
        this model's forms."""
        with forms.applied(self):
            return torch.func.functional_call(module, dict(zip(names, weights)), args, kwargs or {}, strict=True)

    def check(self) -> None:
        """Fail now, naming the file, on a missing tokenizer or a missing or misshapen weight."""
        self.ckpt.check([(m, name_of, prefix) for _, m, name_of, prefix in self._sources()])

    def tokenizer_json(self) -> bytes:
        """The model's tokenizer.json."""
        return self.ckpt.tokenizer_file.read_bytes()

    def tokenizer(self):
        """A fresh `tokenizers.Tokenizer` from the tokenizer file."""
        from tokenizers import Tokenizer

        return Tokenizer.from_str(self.tokenizer_json().decode())
