"""A BERT-style sentence encoder (post-norm blocks, mean pooling, L2 normalisation).

The same architecture as all-MiniLM-L6-v2, at a configurable size. `encode` and `pool`
are the two granular operators `agent.embed` decomposes into; `reference_embed` runs the
whole thing in one PyTorch call and is what compiled results are checked against.
Weights are explicit arguments so that exported operator functions take them as inputs
and the runtime keeps one resident copy per device.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from agentc.lazy import lazy_import
from agentc.models import tokenizer
from agentc.models.params import seeded_normal

torch = lazy_import("torch")


@dataclass(frozen=True)
class EncoderConfig:
    name: str
    dim: int = 64
    layers: int = 2
    heads: int = 4
    ffn: int = 128
    max_len: int = 32
    vocab: int = tokenizer.VOCAB_SIZE


class Encoder:
    layered = False  # decomposed into encode + pool (see agentc.models.kernels)

    def __init__(self, config: EncoderConfig):
        self.config = config
        c = config
        shapes = {"tok_emb": ((c.vocab, c.dim), 1.0), "pos_emb": ((c.max_len, c.dim), 0.5)}
        shapes["emb_ln_w"], shapes["emb_ln_b"] = ((c.dim,), None), ((c.dim,), 0.0)
        for i in range(c.layers):
            p = f"l{i}."
            for w in ("wq", "wk", "wv", "wo"):
                shapes[p + w] = ((c.dim, c.dim), 1 / math.sqrt(c.dim))
            shapes[p + "w1"] = ((c.dim, c.ffn), 1 / math.sqrt(c.dim))
            shapes[p + "w2"] = ((c.ffn, c.dim), 1 / math.sqrt(c.ffn))
            for n in ("ln1", "ln2"):
                shapes[p + n + "_w"], shapes[p + n + "_b"] = ((c.dim,), None), ((c.dim,), 0.0)
        self.params: dict[str, np.ndarray] = {}
        for name, (shape, std) in shapes.items():
            if std is None:
                self.params[name] = np.ones(shape, np.float32)
            elif std == 0.0:
                self.params[name] = np.zeros(shape, np.float32)
            else:
                self.params[name] = seeded_normal(c.name, name, shape, std)
        self.param_names = list(self.params)

    @functools.cached_property
    def weights_digest(self) -> str:
        from agentc.build.weights import content_digest

        return content_digest({self.config.name: self.params})

    def tokenize(self, text: str) -> np.ndarray:
        """Host op: text -> (1, max_len) int32 ids (byte tokenizer)."""
        return tokenizer.encode_padded(text, self.config.max_len)

    # -- granular operators (weights first, then activations) --------------------------
    def encode(self, *args: torch.Tensor) -> torch.Tensor:
        """ids (1, L) int32 -> hidden states (1, L, D)."""
        w = dict(zip(self.param_names, args[: len(self.param_names)]))
        (ids,) = args[len(self.param_names):]
        c = self.config
        keep = (ids != tokenizer.PAD).to(torch.float32)  # (1, L)
        key_bias = (1.0 - keep)[:, None, None, :] * -1e9
        x = torch.index_select(w["tok_emb"], 0, ids[0])[None] + w["pos_emb"][None, : ids.shape[1]]
        x = torch.nn.functional.layer_norm(x, (c.dim,), w["emb_ln_w"], w["emb_ln_b"])
        hd = c.dim // c.heads
        for i in range(c.layers):
            p = f"l{i}."

            def heads(t: torch.Tensor) -> torch.Tensor:
                return t.reshape(1, -1, c.heads, hd).transpose(1, 2)

            q, k, v = (heads(x @ w[p + n]) for n in ("wq", "wk", "wv"))
            att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(hd) + key_bias, dim=-1)
            a = (att @ v).transpose(1, 2).reshape(1, -1, c.dim) @ w[p + "wo"]
            x = torch.nn.functional.layer_norm(x + a, (c.dim,), w[p + "ln1_w"], w[p + "ln1_b"])
            f = torch.nn.functional.gelu(x @ w[p + "w1"]) @ w[p + "w2"]
            x = torch.nn.functional.layer_norm(x + f, (c.dim,), w[p + "ln2_w"], w[p + "ln2_b"])
        return x

    @staticmethod
    def pool(hidden: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        """Masked mean over tokens, then L2 normalisation: (1, L, D), (1, L) -> (1, D)."""
        keep = (ids != tokenizer.PAD).to(hidden.dtype)[..., None]
        summed = (hidden * keep).sum(dim=1)
        mean = summed / keep.sum(dim=1).clamp(min=1.0)
        return mean / mean.norm(dim=-1, keepdim=True).clamp(min=1e-12)

    # -- reference --------------------------------------------------------------------
    def reference_embed(self, ids: np.ndarray) -> np.ndarray:
        weights = [torch.from_numpy(self.params[n]) for n in self.param_names]
        with torch.no_grad():
            t = torch.from_numpy(ids)
            return self.pool(self.encode(*weights, t), t).numpy()

    def embed_texts(self, texts: list[str]) -> np.ndarray:
        """Embeddings of many texts, one row each (index building happens at compile time)."""
        rows = [self.reference_embed(tokenizer.encode_padded(t, self.config.max_len)) for t in texts]
        return np.concatenate(rows, axis=0) if rows else np.zeros((0, self.config.dim), np.float32)
