"""A causal language model from a Hugging Face directory, decomposed like every layered LLM
in agentc: prefill and decode operators per layer (or per step) over an explicit static KV
cache, weights first, activations after.

The math is the architecture's own: each operator calls transformers' modules (the
embedding, the rotary embedding, a decoder layer, the final norm, the LM head) with the
operator's weight arguments swapped in (`torch.func.functional_call`), so torch.export sees
transformers' code and torch-mlir's FX importer lowers it. agentc adds only what static
shapes need: the additive attention mask (causal, with the sliding window where the cache
is longer than it) and a cache object whose `update` writes this step's keys and values
into the cache tensors it then hands back as results.

Operators (`*pe` is what the architecture passes every layer
besides the hidden state: (cos, sin) for rotary models, nothing for learned positions):
  embed_prefill(ids (1,P))        -> x (1,P,D), *pe       block_prefill(x, *pe) -> x, k, v
  head_prefill(x, length (1,))    -> logits (1,V)         sample(logits) -> token (1,)
  embed_decode(token (1,), pos)   -> x (1,1,D), *pe, pos+1
  block_decode(x, *pe, pos, k, v) -> x, k, v              head_decode(x) -> logits (1,V)
  prefill / decode: the same over every layer (step granularity, weight group `<name>/all`),
                   each layer's K and V cache an operand and result of its own
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass

import numpy as np

from agentc.lazy import lazy_import
from agentc.models.hf.checkpoint import Checkpoint, ModelFileError
from agentc.models.hf.imported import Imported, parts
from agentc.models.sampling import greedy

torch = lazy_import("torch")


@dataclass(frozen=True)
class LMConfig:
    name: str  # registry name: kernel symbols and weight groups (`<name>/l<i>`) derive from it
    path: str  # the model directory
    architecture: str
    dim: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab: int
    max_positions: int
    eos: int
    prompt_len: int = 256  # P
    cache_len: int = 512  # S
    sliding_window: int | None = None  # every layer attends to at most this many positions


def lm_config(ckpt: Checkpoint, name: str) -> LMConfig:
    c = ckpt.hf_config
    heads = c.num_attention_heads
    dim = c.hidden_size
    max_pos = getattr(c, "max_position_embeddings", None) or 2048
    S = min(512, max_pos)
    eos = ckpt.eos_ids()
    if not eos:
        raise ModelFileError(f"{ckpt.config_file}: no eos_token_id (here or in generation_config.json): "
                             f"generation would not know where to stop")
    window = getattr(c, "sliding_window", None)
    types = set(getattr(c, "layer_types", None) or ["sliding_attention" if window else "full_attention"])
    if not getattr(c, "use_sliding_window", True) or types != {"sliding_attention"}:
        window = None
    return LMConfig(name=name, path=str(ckpt.dir), architecture=ckpt.architecture, dim=dim,
                    layers=c.num_hidden_layers, heads=heads, kv_heads=getattr(c, "num_key_value_heads", None) or heads,
                    head_dim=getattr(c, "head_dim", None) or dim // heads, vocab=c.vocab_size,
                    max_positions=max_pos, eos=eos[0], prompt_len=min(256, S // 2), cache_len=S,
                    sliding_window=window)


class _Cache:
    """What a transformers attention layer calls `past_key_values`: `update` gets this
    step's keys and values and returns those to attend over; `write` makes them the cache
    tensors the operator returns."""

    def __init__(self, write):
        self.write = write
        self.k = self.v = None

    def update(self, k, v, *args, **kwargs):
        self.k, self.v, k_att, v_att = self.write(k, v)
        return k_att, v_att


class CausalLM(Imported):
    layered = True

    def __init__(self, config: LMConfig, checkpoint: Checkpoint | None = None):
        self.config = config
        self.key = config.name
        self.ckpt = checkpoint or Checkpoint(config.path)
        self.family = self.ckpt.family("llm")
        self._base: CausalLM | None = None

    @property
    def eos(self) -> int:
        return self.config.eos

    def variant(self, key: str, prompt_len: int, cache_len: int) -> CausalLM:
        """The same model and weights with another prompt budget P and cache length S."""
        if not 1 <= prompt_len < cache_len <= self.config.max_positions:
            raise ValueError(f"need 1 <= prompt_len < cache_len <= {self.config.max_positions} (the model's "
                             f"context), got {prompt_len} and {cache_len}")
        v = CausalLM(dataclasses.replace(self.config, prompt_len=prompt_len, cache_len=cache_len), self.ckpt)
        v.key, v._base = key, self._base or self
        return v

    # -- the architecture's modules -------------------------------------------------------
    @functools.cached_property
    def _parts(self):
        if self._base is not None:
            return self._base._parts
        model = self.ckpt.template()
        fam = self.family
        root = model.get_submodule(fam.root)
        tied = self._tied()
        ends = parts({name: getattr(root, name) for name in (*fam.embed, fam.positions, fam.rotary, fam.norm) if name}
                     | ({} if tied else {"lm_head": model.lm_head}))
        layer = root.get_submodule(fam.layers)[0]
        return ends, layer, [*(n for n, _ in layer.named_parameters()), *(n for n, _ in layer.named_buffers())]

    def _tied(self) -> bool:
        if self.ckpt.has_weights:
            return "lm_head.weight" not in self.ckpt.tensors
        return bool(getattr(self.ckpt.hf_config, "tie_word_embeddings", False))

    def _sources(self):
        """(group, module, checkpoint name of a parameter, base prefix) per weight group:
        `<name>/embed` (everything before and after the layers) and `<name>/l<i>`."""
        ends, layer, _ = self._parts
        fam, c = self.family, self.config
        yield f"{c.name}/embed", ends, lambda n: n if n.startswith("lm_head.") else f"{fam.root}.{n}", fam.root
        for i in range(c.layers):
            yield f"{c.name}/l{i}", layer, lambda n, i=i: f"{fam.root}.{fam.layers}.{i}.{n}", fam.root

    @property
    def all_group(self) -> dict[str, np.ndarray]:
        """Every weight in one group (step granularity), in the argument order of prefill/decode."""
        from agentc.models.params import all_group

        return all_group(self.groups, self.config.name, self.config.layers)

    def _ends(self, w, fn, *acts):
        return self.call_with(self._parts[0], list(self.groups[f"{self.config.name}/embed"]), w, (fn, *acts))

    def _layer(self, w, x, pe, mask, cache):
        _, layer, names = self._parts
        kwargs = {"attention_mask": mask, "past_key_values": cache}
        if self.family.rotary:
            kwargs["position_embeddings"] = tuple(pe)
        out = self.call_with(layer, names, w, (x,), kwargs)
        return out[0] if isinstance(out, tuple) else out

    def position_examples(self, T: int) -> list[np.ndarray]:
        """Example `*pe` for T positions (only their shapes matter)."""
        if not self.family.rotary:
            return []
        rot = getattr(self._parts[0], self.family.rotary)
        with torch.no_grad():
            return [t.numpy() for t in rot(torch.zeros(1, T, 1), torch.arange(T)[None])]

    # -- operators ------------------------------------------------------------------------
    def _embed(self, ends, ids, positions):
        fam = self.family
        x = getattr(ends, fam.embed[0])(ids)
        if fam.positions:
            x = x + getattr(ends, fam.positions)(positions)
        if fam.rotary:
            return (x, *getattr(ends, fam.rotary)(x, positions))
        return (x,)

    def _head(self, ends, x):
        h = getattr(ends, self.family.norm)(x)
        if hasattr(ends, "lm_head"):
            return ends.lm_head(h)
        return torch.nn.functional.linear(h, getattr(ends, self.family.embed[0]).weight)

    def _split(self, args):
        n = len(self._parts[2])
        return args[:n], args[n], args[n + 1:]

    def _allowed(self, q, k):
        """The additive mask (1, 1, T, K) of query positions q (T,) over key positions k (K,);
        for q (B, T), each sequence's own: (B, 1, T, K)."""
        ok = k <= q[..., None]
        w = self.config.sliding_window
        if w is not None and w < self.config.cache_len:
            ok = ok & (k > q[..., None] - w)
        mask = torch.where(ok, 0.0, float("-inf"))
        return mask[None, None] if q.dim() == 1 else mask[:, None]

    def embed_prefill(self, *args):
        *w, ids = args
        pos = torch.arange(ids.shape[1], dtype=torch.int32)[None]
        return self._ends(w, self._embed, ids, pos)

    def block_prefill(self, *args):
        """(layer weights..., x, *pe) -> x, k cache, v cache (prompt positions, then zeros)."""
        w, x, pe = self._split(args)
        T, S = x.shape[1], self.config.cache_len
        pos = torch.arange(T, dtype=torch.int32)

        def write(k, v):
            pad = (0, 0, 0, S - T)
            return torch.nn.functional.pad(k, pad), torch.nn.functional.pad(v, pad), k, v

        cache = _Cache(write)
        x = self._layer(w, x, pe, self._allowed(pos, pos), cache)
        return x, cache.k, cache.v

    def head_prefill(self, *args):
        *w, x, length = args
        last = torch.index_select(x, 1, length - 1)
        return self._ends(w, self._head, last)[:, 0]

    def embed_decode(self, *args):
        """token (B,), pos (B,): B sequences, each at its own position (B = 1 but for batched
        serving, agentc.models.batched)."""
        *w, token, pos = args
        return (*self._ends(w, self._embed, token[:, None], pos[:, None]), pos + 1)

    def block_decode(self, *args):
        """(layer weights..., x, *pe, pos, k cache, v cache) -> x, k cache, v cache; sequence b
        of a batch writes cache slot pos[b] and attends to the slots before it."""
        w, x, rest = self._split(args)
        *pe, pos, k_cache, v_cache = rest
        slots = torch.arange(self.config.cache_len, dtype=torch.int32)
        here = (slots[None] == pos[:, None])[:, None, :, None]  # (B, 1, S, 1)

        def write(k, v):
            kc, vc = torch.where(here, k, k_cache), torch.where(here, v, v_cache)
            return kc, vc, kc, vc

        cache = _Cache(write)
        x = self._layer(w, x, pe, self._allowed(pos[:, None], slots), cache)
        return x, cache.k, cache.v

    def head_decode(self, *args):
        *w, x = args
        return self._ends(w, self._head, x)[:, 0]

    @staticmethod
    def sample(logits):
        return greedy(logits)

    def _split_all(self, args):
        n_emb = len(self.groups[f"{self.config.name}/embed"])
        n, L = len(self._parts[2]), self.config.layers
        emb, rest = args[:n_emb], args[n_emb:]
        return emb, [rest[i * n:(i + 1) * n] for i in range(L)], rest[L * n:]

    def prefill(self, *args):
        """-> logits, then each layer's K cache, then each layer's V cache: per-layer tensors,
        not stacked ones, which would copy every cache whole on each step."""
        emb, layers, (ids, length) = self._split_all(args)
        x, *pe = self.embed_prefill(*emb, ids)
        ks, vs = [], []
        for w in layers:
            x, k, v = self.block_prefill(*w, x, *pe)
            ks.append(k)
            vs.append(v)
        return self.head_prefill(*emb, x, length), *ks, *vs

    def decode(self, *args):
        """(token, pos, K caches..., V caches...) -> logits, K caches..., V caches..., pos + 1."""
        emb, layers, (token, pos, *caches) = self._split_all(args)
        L = len(layers)
        x, *pe, nxt = self.embed_decode(*emb, token, pos)
        ks, vs = [], []
        for i, w in enumerate(layers):
            x, k, v = self.block_decode(*w, x, *pe, pos, caches[i], caches[L + i])
            ks.append(k)
            vs.append(v)
        return self.head_decode(*emb, x), *ks, *vs, nxt

    # -- tokenizer (host ops) -------------------------------------------------------------
    @functools.cached_property
    def _chat(self):
        from agentc.models.hf.chat import ChatPrompt

        return ChatPrompt(self.tokenizer(), self.ckpt.chat_template, self.ckpt.tokenizer_config)

    @functools.cached_property
    def eos_ids(self) -> set[int]:
        return set(self.ckpt.eos_ids()) | {self.config.eos}

    def chat_ids(self, prompt: str) -> list[int]:
        return self._chat.ids(prompt, self.config.prompt_len)[0]

    def prompt_tokens(self, prompt: str) -> tuple[np.ndarray, np.ndarray, int]:
        ids, dropped = self._chat.ids(prompt, self.config.prompt_len)
        n = len(ids)
        ids = ids + [self.config.eos] * (self.config.prompt_len - n)
        return np.asarray([ids], np.int32), np.asarray([n], np.int32), dropped

    def tokenize_prompt(self, prompt: str) -> tuple[np.ndarray, np.ndarray]:
        ids, length, _ = self.prompt_tokens(prompt)
        return ids, length

    def detokenize(self, tokens) -> str:
        return self._chat.text([int(np.asarray(t).ravel()[0]) for t in tokens], self.eos_ids)

    # -- reference --------------------------------------------------------------------------
    @functools.cached_property
    def reference_model(self):
        """transformers' own model with the directory's weights (float32), for references."""
        import warnings

        import transformers

        transformers.utils.logging.disable_progress_bar()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cls = getattr(transformers, self.config.architecture)
            return cls.from_pretrained(self.config.path, dtype=torch.float32, attn_implementation="eager").eval()

    def generate_ids(self, ids: list[int], max_tokens: int, temperature: float = 0.0, top_k: int = 0,
                     top_p: float = 1.0, seed: int = -1, stop=()) -> list[int]:
        """Generation by transformers' model: greedy through its `generate`; with a
        temperature, each step's full forward pass gives logits, and the token is the inverse
        CDF of transformers' warped distribution (sampling.reference_probabilities) at the
        step's uniform draw (sampling.uniform). Stops after an end token or a stop string."""
        from agentc.models import sampling

        m = self.reference_model
        if not temperature and not stop:
            with torch.no_grad():
                out = m.generate(torch.tensor([ids]), max_new_tokens=max_tokens, do_sample=False,
                                 eos_token_id=sorted(self.eos_ids), pad_token_id=self.config.eos)
            return [int(t) for t in out[0, len(ids):]]
        seq, out = list(ids), []
        for i in range(max_tokens):
            with torch.no_grad():
                logits = m(torch.tensor([seq])).logits[0, -1].numpy()
            if temperature:
                p = sampling.reference_probabilities(logits, temperature, top_k, top_p)
                cdf = np.cumsum(p)
                t = min(int(np.searchsorted(cdf, sampling.uniform(seed, i) * cdf[-1], side="right")), len(p) - 1)
            else:
                t = int(np.argmax(logits))
            out.append(t)
            seq.append(t)
            if t in self.eos_ids or any(s in self.detokenize(out) for s in stop):
                break
        return out

    def reference_generate(self, prompt: str, max_tokens: int, **sampling) -> str:
        """The text transformers generates (see generate_ids), cut before a stop string."""
        from agentc.models.sampling import before_stop

        text = self.detokenize(self.generate_ids(self.chat_ids(prompt), max_tokens, **sampling))
        return before_stop(text, sampling.get("stop", ()))
