"""Benchmark kernels exported from PyTorch, the way agentc's own kernels are.

Softmax, layernorm and attention go through the same torch-mlir export as the model
kernels (agentc.models.export), and top-k is agentc's own kernel (agentc.models.kernels'
argmax rounds) over a synthetic index, so the calibration sees the linalg that the cost
model will be asked to price.
"""

from __future__ import annotations

import types

import numpy as np

from agentc.bench.timing import DTYPES
from agentc.lazy import lazy_import
from agentc.models.export import export_function

torch = lazy_import("torch")


def _softmax(x):
    return torch.softmax(x, dim=-1)


def _layernorm(x, gamma, beta):
    return torch.nn.functional.layer_norm(x, (x.shape[-1],), gamma, beta, 1e-5)


def _attention(q, k, v):
    scores = (q @ k.transpose(-1, -2)) * (q.shape[-1] ** -0.5)
    return torch.softmax(scores, dim=-1) @ v


def _export(fn, name: str, arrays: list[np.ndarray]) -> str:
    return export_function(fn, arrays, name, [], {"bench": fn.__name__})


def softmax(name: str, rows: int, cols: int, dtype: str) -> str:
    return _export(_softmax, name, [np.zeros((rows, cols), DTYPES[dtype])])


def layernorm(name: str, rows: int, cols: int, dtype: str) -> str:
    return _export(_layernorm, name, [np.zeros((rows, cols), DTYPES[dtype]), np.ones(cols, DTYPES[dtype]),
                                      np.zeros(cols, DTYPES[dtype])])


def attention(name: str, heads: int, seq: int, head_dim: int, dtype: str) -> str:
    qkv = np.zeros((heads, seq, head_dim), DTYPES[dtype])
    return _export(_attention, name, [qkv, qkv, qkv])


def linear(name: str, m: int, k: int, n: int, dtype: str) -> str:
    """x[m,k] @ W[n,k]^T as agentc's models write a linear layer (`forms.linear`, its
    default form)."""
    from agentc.models import forms

    return _export(forms.linear, name, [np.zeros((m, k), DTYPES[dtype]), np.zeros((n, k), DTYPES[dtype])])


def sample(name: str, vocab: int) -> str:
    """agentc's greedy sampling (agentc.models.sampling) over one row of `vocab` logits."""
    from agentc.models.sampling import greedy

    return _export(greedy, name, [np.zeros((1, vocab), np.float32)])


def _index_kernels(n: int, dim: int, k: int):
    from agentc.models.kernels import index_kernels

    index = types.SimpleNamespace(name=f"bench{n}x{dim}", embeddings=np.zeros((n, dim), np.float32))
    return index_kernels(index, k)


def topk(n: int, k: int) -> tuple[str, str]:
    """agentc's top-k kernel over n scores: (module text, function name)."""
    kernel = _index_kernels(n, 1, k)[1]
    return kernel.impl_text, kernel.symbol + "_impl"


def similarity(n: int, dim: int) -> tuple[str, str]:
    """agentc's vector-search similarity (query @ corpus^T) over an n x dim corpus."""
    kernel = _index_kernels(n, dim, 1)[0]
    return kernel.impl_text, kernel.symbol + "_impl"
