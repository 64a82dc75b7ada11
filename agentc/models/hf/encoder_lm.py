"""A sentence encoder from a Hugging Face directory (BERT, MiniLM, RoBERTa, XLM-R),
decomposed like agentc's layered encoders: embeddings, one operator per layer, pooling.

The embeddings and layers are transformers' modules with the operator's weight arguments
swapped in; agentc adds the additive padding mask. Pooling and normalisation are what the
directory's sentence-transformers configuration says (modules.json, 1_Pooling/config.json:
mean, CLS or max tokens; a Normalize module), mean pooling with normalisation without one.

Operators (weights first):
  embeddings(ids (1, L) i32) -> x (1, L, D);  block(x, ids) -> x;  pool(x, ids) -> (1, D)
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass

import numpy as np

from agentc.lazy import lazy_import
from agentc.models.hf.checkpoint import Checkpoint, ModelFileError
from agentc.models.hf.imported import Imported

torch = lazy_import("torch")

POOLINGS = ("mean", "cls", "max")


@dataclass(frozen=True)
class EncConfig:
    name: str
    path: str
    architecture: str
    dim: int
    layers: int
    vocab: int
    pad: int  # the padding token: masked in attention and pooling
    pooling: str  # one of POOLINGS
    normalize: bool
    max_len: int = 64  # L: queries are padded/truncated to this
    passage_len: int = 256  # passages are embedded at their own length, up to this


def _pooling(ckpt: Checkpoint) -> tuple[str, bool, int | None]:
    """(pooling, normalize, max_seq_length) from the sentence-transformers files."""
    modules_file = ckpt.dir / "modules.json"
    if not modules_file.is_file():
        return "mean", True, None
    modules = json.loads(modules_file.read_text())
    types = [m.get("type", "").rsplit(".", 1)[-1] for m in modules]
    pooling = "mean"
    for m in modules:
        if m.get("type", "").endswith("Pooling"):
            cfg_file = ckpt.dir / m.get("path", "") / "config.json"
            cfg = json.loads(cfg_file.read_text()) if cfg_file.is_file() else {}
            modes = [k.removeprefix("pooling_mode_").removesuffix("_tokens").removesuffix("_token")
                     for k, v in cfg.items() if k.startswith("pooling_mode_") and v]
            if len(modes) != 1 or modes[0] not in POOLINGS:
                raise ModelFileError(f"{cfg_file}: pooling {modes or 'none'} is not supported (supported: one of "
                                     f"{', '.join(POOLINGS)})")
            pooling = modes[0]
    st = ckpt.dir / "sentence_bert_config.json"
    max_seq = json.loads(st.read_text()).get("max_seq_length") if st.is_file() else None
    return pooling, "Normalize" in types, max_seq


def enc_config(ckpt: Checkpoint, name: str) -> EncConfig:
    c = ckpt.hf_config
    pooling, normalize, max_seq = _pooling(ckpt)
    pad = getattr(c, "pad_token_id", None)
    limit = (getattr(c, "max_position_embeddings", 512) or 512) - (2 if pad not in (None, 0) else 0)
    return EncConfig(name=name, path=str(ckpt.dir), architecture=ckpt.architecture, dim=c.hidden_size,
                     layers=c.num_hidden_layers, vocab=c.vocab_size, pad=pad or 0, pooling=pooling,
                     normalize=normalize, max_len=min(64, limit), passage_len=min(max_seq or limit, limit))


class Encoder(Imported):
    layered = True

    def __init__(self, config: EncConfig, checkpoint: Checkpoint | None = None):
        self.config = config
        self.ckpt = checkpoint or Checkpoint(config.path)
        self.family = self.ckpt.family()

    @functools.cached_property
    def _parts(self):
        model = self.ckpt.template()
        root = model.get_submodule(self.family.root)
        emb = root.get_submodule(self.family.embed[0])
        layer = root.get_submodule(self.family.layers)[0]
        return emb, layer

    def _sources(self):
        """(group, module, checkpoint name of a parameter, base prefix) per weight group:
        `<name>/emb` and `<name>/l<i>`."""
        emb, layer = self._parts[:2]
        fam, c = self.family, self.config
        pre = f"{fam.root}." if fam.root else ""
        yield f"{c.name}/emb", emb, lambda n: f"{pre}{fam.embed[0]}.{n}", fam.root
        for i in range(c.layers):
            yield f"{c.name}/l{i}", layer, lambda n, i=i: f"{pre}{fam.layers}.{i}.{n}", fam.root

    @functools.cached_property
    def weights_digest(self) -> str:
        from agentc.store import digest

        return digest({"weights": self.ckpt.weights_key, "config": repr(self.config)})

    # -- operators ------------------------------------------------------------------------
    def embeddings(self, *args):
        *w, ids = args
        emb = self._parts[0]
        return self.call_with(emb, list(self.groups[f"{self.config.name}/emb"]), w, (), {"input_ids": ids})

    def block(self, *args):
        *w, x, ids = args
        mask = torch.where(ids == self.config.pad, float("-inf"), 0.0)[:, None, None, :]
        out = self.call_with(self._parts[1], list(self.groups[f"{self.config.name}/l0"]), w, (x,), {"attention_mask": mask})
        return out[0] if isinstance(out, tuple) else out

    def pool(self, hidden, ids):
        keep = (ids != self.config.pad).to(hidden.dtype)[..., None]
        if self.config.pooling == "cls":
            v = hidden[:, 0]
        elif self.config.pooling == "max":
            v = torch.where(keep > 0, hidden, float("-inf")).amax(dim=1)
        else:
            v = (hidden * keep).sum(dim=1) / keep.sum(dim=1).clamp(min=1.0)
        return v / v.norm(dim=-1, keepdim=True).clamp(min=1e-12) if self.config.normalize else v

    # -- host ops -------------------------------------------------------------------------
    @functools.cached_property
    def _tokenizer(self):
        tok = self.tokenizer()
        tok.no_padding()
        tok.no_truncation()
        return tok

    def token_ids(self, text: str, max_len: int | None = None) -> list[int]:
        """The tokenizer's ids (with its special tokens), truncated to max_len keeping the last."""
        ids = self._tokenizer.encode(text).ids
        if max_len is not None and len(ids) > max_len:
            ids = ids[: max_len - 1] + [ids[-1]]
        return ids

    def tokenize(self, text: str) -> np.ndarray:
        L = self.config.max_len
        ids = self.token_ids(text, L)
        return np.asarray([ids + [self.config.pad] * (L - len(ids))], np.int32)

    # -- reference --------------------------------------------------------------------------
    @functools.cached_property
    def _torch_groups(self):
        return {g: [torch.from_numpy(np.array(a)) for a in ps.values()] for g, ps in self.groups.items()}

    def reference_embed(self, ids: np.ndarray) -> np.ndarray:
        """The operators chained in PyTorch: (1, L) int32 -> (1, D)."""
        c, w = self.config, self._torch_groups
        with torch.no_grad():
            t = torch.from_numpy(np.ascontiguousarray(ids, np.int32))
            x = self.embeddings(*w[f"{c.name}/emb"], t)
            for i in range(c.layers):
                x = self.block(*w[f"{c.name}/l{i}"], x, t)
            return self.pool(x, t).numpy()

    def embed_texts(self, texts: list[str], max_len: int | None = None) -> np.ndarray:
        """Passage embeddings at each passage's own length (no padding)."""
        n = max_len or self.config.passage_len
        rows = [self.reference_embed(np.asarray([self.token_ids(t, n)], np.int32)) for t in texts]
        return np.concatenate(rows, axis=0) if rows else np.zeros((0, self.config.dim), np.float32)
