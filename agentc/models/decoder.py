"""A Llama-style causal LM (RMSNorm, SiLU-gated MLP, learned positions) with a static KV
cache.

`prefill`, `decode` and `sample` are the granular operators `agent.llm` decomposes into:
prefill runs the padded prompt once and fills the cache; each decode step writes one
position of the cache and attends to the positions before it; sample is greedy argmax.
Static shapes (prompt length P, cache length S) are what IREE compiles once and reuses.
`reference_generate` recomputes the whole sequence at every step with no cache: an
independent path that the compiled operators must reproduce token for token.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from agentc.lazy import lazy_import
from agentc.models import tokenizer
from agentc.models.params import seeded_normal
from agentc.models.sampling import greedy

torch = lazy_import("torch")


@dataclass(frozen=True)
class DecoderConfig:
    name: str
    dim: int = 64
    layers: int = 2
    heads: int = 4
    ffn: int = 128
    prompt_len: int = 160  # P: prompts are padded or truncated to this
    cache_len: int = 192  # S: prompt plus generated tokens
    vocab: int = tokenizer.VOCAB_SIZE
    eos: int = tokenizer.EOS  # generation stops after sampling it


class Decoder:
    layered = False  # decomposed into prefill, decode, sample (see agentc.models.kernels)

    @property
    def eos(self) -> int:
        """End of turn: generation stops after sampling it."""
        return self.config.eos

    def __init__(self, config: DecoderConfig):
        self.config = config
        c = config
        shapes = {"tok_emb": (c.vocab, c.dim), "pos_emb": (c.cache_len, c.dim)}
        for i in range(c.layers):
            p = f"l{i}."
            for w in ("wq", "wk", "wv", "wo"):
                shapes[p + w] = (c.dim, c.dim)
            shapes[p + "w_gate"], shapes[p + "w_up"] = (c.dim, c.ffn), (c.dim, c.ffn)
            shapes[p + "w_down"] = (c.ffn, c.dim)
            shapes[p + "norm1"], shapes[p + "norm2"] = (c.dim,), (c.dim,)
        shapes["norm_f"] = (c.dim,)
        shapes["lm_head"] = (c.dim, c.vocab)
        self.params: dict[str, np.ndarray] = {}
        for name, shape in shapes.items():
            if len(shape) == 1:
                self.params[name] = np.ones(shape, np.float32)
            else:
                std = 1.0 if name in ("tok_emb", "pos_emb") else 1 / math.sqrt(shape[0])
                self.params[name] = seeded_normal(c.name, name, shape, std)
        self.param_names = list(self.params)

    def _split(self, args):
        n = len(self.param_names)
        return dict(zip(self.param_names, args[:n])), args[n:]

    @staticmethod
    def _rms(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt((x * x).mean(-1, keepdim=True) + 1e-6) * w

    def _heads(self, t: torch.Tensor) -> torch.Tensor:
        c = self.config
        return t.reshape(1, -1, c.heads, c.dim // c.heads).transpose(1, 2)

    def _block(self, w, i, x, attend):
        """One transformer block; `attend(i, q, k, v)` supplies the attention output so
        that prefill, decode and the reference differ only in how they see keys."""
        p, c = f"l{i}.", self.config
        h = self._rms(x, w[p + "norm1"])
        q, k, v = (self._heads(h @ w[p + n]) for n in ("wq", "wk", "wv"))
        a = attend(i, q, k, v)
        x = x + a.transpose(1, 2).reshape(1, -1, c.dim) @ w[p + "wo"]
        h = self._rms(x, w[p + "norm2"])
        return x + (torch.nn.functional.silu(h @ w[p + "w_gate"]) * (h @ w[p + "w_up"])) @ w[p + "w_down"]

    def _logits(self, w, x):
        return self._rms(x, w["norm_f"]) @ w["lm_head"]

    # -- host ops (byte tokenizer) -----------------------------------------------------
    def tokenize_prompt(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        return tokenizer.encode_prompt(text, self.config.prompt_len)

    def prompt_tokens(self, text: str) -> tuple[np.ndarray, np.ndarray, int]:
        """tokenize_prompt, and how many tokens from the start did not fit the budget."""
        return tokenizer.encode_prompt_counted(text, self.config.prompt_len)

    @staticmethod
    def detokenize(tokens) -> str:
        return tokenizer.decode(int(np.asarray(t).ravel()[0]) for t in tokens)

    # -- granular operators --------------------------------------------------------------
    def prefill(self, *args):
        """ids (1, P) int32, length (1,) int32 ->
        logits at the last prompt position (1, V), k and v caches (L, 1, H, S, Dh)."""
        w, (ids, length) = self._split(args)
        c = self.config
        P, S = c.prompt_len, c.cache_len
        pos = torch.arange(P, dtype=torch.int32)
        causal = pos[None, :] <= pos[:, None]
        bias = torch.where(causal, 0.0, -1e9)[None, None]
        ks, vs = [], []

        def attend(i, q, k, v):
            ks.append(k)
            vs.append(v)
            att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1]) + bias, dim=-1)
            return att @ v

        x = torch.index_select(w["tok_emb"], 0, ids[0])[None] + w["pos_emb"][None, :P]
        for i in range(c.layers):
            x = self._block(w, i, x, attend)
        last = (pos == (length - 1)).to(x.dtype)  # one-hot of the last real position
        x_last = (x * last[None, :, None]).sum(dim=1, keepdim=True)
        logits = self._logits(w, x_last)[:, 0]
        pad = (0, 0, 0, S - P)
        k_cache = torch.stack([torch.nn.functional.pad(k, pad) for k in ks])
        v_cache = torch.stack([torch.nn.functional.pad(v, pad) for v in vs])
        return logits, k_cache, v_cache

    def decode(self, *args):
        """token (1,) int32, pos (1,) int32, k/v caches -> logits (1, V), updated caches,
        pos + 1. The new key/value is blended in at `pos` so shapes stay static."""
        w, (token, pos, k_cache, v_cache) = self._split(args)
        c = self.config
        S = c.cache_len
        slots = torch.arange(S, dtype=torch.int32)
        here = (slots == pos).to(torch.float32)[None, None, :, None]  # (1, 1, S, 1)
        bias = torch.where(slots <= pos, 0.0, -1e9)[None, None, None, :]
        new_k, new_v = [], []

        def attend(i, q, k, v):
            kc = k_cache[i] * (1.0 - here) + k * here
            vc = v_cache[i] * (1.0 - here) + v * here
            new_k.append(kc)
            new_v.append(vc)
            att = torch.softmax(q @ kc.transpose(-1, -2) / math.sqrt(q.shape[-1]) + bias, dim=-1)
            return att @ vc

        onehot_pos = (slots == pos).to(torch.float32)
        x = torch.index_select(w["tok_emb"], 0, token)[:, None, :] + (onehot_pos @ w["pos_emb"])[None, None, :]
        for i in range(c.layers):
            x = self._block(w, i, x, attend)
        return self._logits(w, x)[:, 0], torch.stack(new_k), torch.stack(new_v), pos + 1

    @staticmethod
    def sample(logits: torch.Tensor) -> torch.Tensor:
        """Greedy sampling: (1, V) -> (1,) int32."""
        return greedy(logits)

    # -- reference -------------------------------------------------------------------
    def reference_generate(self, prompt: str, max_tokens: int) -> str:
        """Greedy generation recomputing the whole sequence each step (no cache)."""
        return tokenizer.decode(self.reference_ids(prompt, max_tokens))

    def reference_ids(self, prompt: str, max_tokens: int) -> list[int]:
        """The token ids of `reference_generate`, up to and including end-of-turn."""
        c = self.config
        ids, length = tokenizer.encode_prompt(prompt, c.prompt_len)
        seq = [int(t) for t in ids[0, : int(length[0])]]
        w = {n: torch.from_numpy(a) for n, a in self.params.items()}
        out = []

        def attend(i, q, k, v):
            n = q.shape[2]
            bias = torch.triu(torch.full((n, n), -1e9), diagonal=1)[None, None]
            att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1]) + bias, dim=-1)
            return att @ v

        with torch.no_grad():
            for _ in range(max_tokens):
                t = torch.tensor([seq])
                x = w["tok_emb"][t] + w["pos_emb"][None, : len(seq)]
                for i in range(c.layers):
                    x = self._block(w, i, x, attend)
                nxt = int(torch.argmax(self._logits(w, x[:, -1:])[0, 0]))
                out.append(nxt)
                seq.append(nxt)
                if nxt == c.eos:
                    break
        return out
