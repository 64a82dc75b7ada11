"""A cross-encoder reranker from a Hugging Face directory (BERT- or XLM-R-family
`...ForSequenceClassification` with one label): scores (query, passage) pairs.

It is an encoder (agentc.models.hf.encoder_lm) over k pairs at once, whose embeddings also
take the token types that mark the passage, followed by the architecture's own
classification head. The scores then order the passages on the device.

Operators (weights first):
  embeddings(ids (k, L), types (k, L)) -> x (k, L, D);  block(x, ids) -> x
  score(x) -> (k,) relevance logits;  order(scores (k,), indices (1, k)) -> (1, k) best first
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from agentc.lazy import lazy_import
from agentc.models.hf.checkpoint import Checkpoint, ModelFileError
from agentc.models.hf.encoder_lm import Encoder
from agentc.models.hf.imported import parts

torch = lazy_import("torch")


@dataclass(frozen=True)
class RerankConfig:
    name: str
    path: str
    architecture: str
    dim: int
    layers: int
    vocab: int
    pad: int
    max_len: int = 128  # L: each (query, passage) pair is truncated (longest first) and padded to this


def rerank_config(ckpt: Checkpoint, name: str) -> RerankConfig:
    c = ckpt.hf_config
    if getattr(c, "num_labels", 1) != 1:
        raise ModelFileError(f"{ckpt.config_file}: a reranker has one relevance label, this model has "
                             f"{c.num_labels} (num_labels / id2label)")
    pad = getattr(c, "pad_token_id", None) or 0
    limit = (getattr(c, "max_position_embeddings", 512) or 512) - (2 if pad else 0)
    return RerankConfig(name=name, path=str(ckpt.dir), architecture=ckpt.architecture, dim=c.hidden_size,
                        layers=c.num_hidden_layers, vocab=c.vocab_size, pad=pad, max_len=min(128, limit))


class Reranker(Encoder):
    _TOKENIZER_CACHES = ("_tokenizer", "_pair_tokenizer")

    @functools.cached_property
    def _parts(self):
        model = self.ckpt.template()
        root = model.get_submodule(self.family.root)
        head = parts({name.replace(".", "_"): model.get_submodule(name) for name in self.family.head})
        return root.get_submodule(self.family.embed[0]), root.get_submodule(self.family.layers)[0], head

    def _sources(self):
        yield from super()._sources()
        names = {n.replace(".", "_"): n for n in self.family.head}
        yield (f"{self.config.name}/head", self._parts[2],
               lambda n: f"{names[n.split('.', 1)[0]]}.{n.split('.', 1)[1]}", self.family.root)

    # -- operators --------------------------------------------------------------------------
    def embeddings(self, *args):
        *w, ids, types = args
        return self.call_with(self._parts[0], list(self.groups[f"{self.config.name}/emb"]), w, (),
                         {"input_ids": ids, "token_type_ids": types})

    def score(self, *args):
        *w, x = args

        def head(modules, x):
            for m in modules.children():
                x = m(x)
            return x

        return self.call_with(self._parts[2], list(self.groups[f"{self.config.name}/head"]), w, (head, x))[:, 0]

    @staticmethod
    def order(scores, indices):
        """The passage indices sorted by score, best first (ties: the earlier one)."""
        from agentc.models.ranking import top_k

        picked = top_k(scores[None], scores.shape[0])
        return torch.gather(indices, 1, picked.to(torch.int64))

    # -- host ops ---------------------------------------------------------------------------
    @functools.cached_property
    def _pair_tokenizer(self):
        tok = self.tokenizer()
        tok.enable_truncation(max_length=self.config.max_len, strategy="longest_first")
        tok.enable_padding(length=self.config.max_len, pad_id=self.config.pad)
        return tok

    def pair_tokenize(self, query: str, passages: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """(ids, token types), each (k, L) int32, for the pairs (query, passage)."""
        enc = self._pair_tokenizer.encode_batch([(query, p) for p in passages])
        return (np.asarray([e.ids for e in enc], np.int32), np.asarray([e.type_ids for e in enc], np.int32))

    # -- reference --------------------------------------------------------------------------
    def reference_scores(self, query: str, passages: list[str]) -> np.ndarray:
        """transformers' own tokenizer and model on the pairs: (k,) logits."""
        import warnings

        import transformers

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tok = transformers.AutoTokenizer.from_pretrained(self.config.path)
            model = getattr(transformers, self.config.architecture).from_pretrained(
                self.config.path, dtype=torch.float32, attn_implementation="eager").eval()
        batch = tok([query] * len(passages), passages, truncation="longest_first", max_length=self.config.max_len,
                    padding="max_length", return_tensors="pt")
        with torch.no_grad():
            return model(**batch).logits[:, 0].numpy()
