"""The compute functions that model ops decompose into, and their MLIR.

A kernel is one exported linalg function (`<kernel>_impl`, weights first) plus the
`ml_program` globals holding its weights and a wrapper (`<kernel>`) that loads the globals
and calls the implementation. Operator IR calls the wrapper with activations only, so a
call's operands are exactly the data that moves between operators; weights stay resident.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from agentc.lazy import lazy_import
from agentc.models import registry, tokenizer
from agentc.models.export import export_function

torch = lazy_import("torch")

@dataclass
class Kernel:
    symbol: str  # wrapper function name, e.g. "tiny_lm__prefill"
    group: str  # weight group, e.g. "tiny-lm" or "index:facts"
    params: dict[str, np.ndarray]  # weight name -> value, in argument order
    impl_text: str  # module text holding func @<symbol>_impl


def sanitize(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", name)


def _kernel(group: str, op: str, fn, params: dict, acts: list) -> Kernel:
    symbol = f"{sanitize(group)}__{op}"
    args = [params[n] for n in params] + list(acts)
    key = {"group": group, "op": op, "weights": _weights_key(params)}
    text = export_function(fn, args, symbol + "_impl", list(params), key)
    return Kernel(symbol, group, params, text)


def _weights_key(params: dict) -> list:
    # Shapes, not values: weights are runtime parameters, so values never change the code.
    return [(n, list(a.shape), str(a.dtype)) for n, a in params.items()]


def encoder_kernels(model: str) -> list[Kernel]:
    enc = registry.encoder(model)
    c = enc.config
    ids = tokenizer.encode_padded("example", c.max_len)
    hidden = np.zeros((1, c.max_len, c.dim), np.float32)  # encode's output: only its shape matters
    return [
        _kernel(model, "encode", enc.encode, enc.params, [ids]),
        _kernel(model, "pool", enc.pool, {}, [hidden, ids]),
    ]


def index_kernels(index, k: int) -> list[Kernel]:
    corpus = index.embeddings
    group = f"index:{index.name}"
    query = corpus[:1]

    def similarity(c, q):
        return q @ c.T

    def topk(scores):
        # k rounds of argmax-and-mask: plain linalg (no sort op), ties go to the lower index.
        slots = torch.arange(scores.shape[-1], dtype=torch.int32)
        picked = []
        for _ in range(k):
            i = torch.argmax(scores, dim=-1).to(torch.int32)
            picked.append(i)
            scores = torch.where(slots[None, :] == i[:, None], float("-inf"), scores)
        return torch.stack(picked, dim=-1)

    scores = (query @ corpus.T).astype(np.float32)
    return [
        _kernel(group, "similarity", similarity, {"embeddings": corpus}, [query]),
        _kernel(group, f"top{k}", topk, {}, [scores]),
    ]


def decoder_kernels(model: str) -> list[Kernel]:
    dec = registry.decoder(model)
    c = dec.config
    ids, length = tokenizer.encode_prompt("example", c.prompt_len)
    # Example inputs for the later operators: only their shapes and dtypes matter.
    logits = np.zeros((1, c.vocab), np.float32)
    kc = vc = np.zeros((c.layers, 1, c.heads, c.cache_len, c.dim // c.heads), np.float32)
    token = np.zeros((1,), np.int32)
    return [
        _kernel(model, "prefill", dec.prefill, dec.params, [ids, length]),
        _kernel(model, "decode", dec.decode, dec.params, [token, length, kc, vc]),
        _kernel(model, "sample", dec.sample, {}, [logits]),
    ]


def global_name(group: str, param: str) -> str:
    return f"{group}/{param}"
