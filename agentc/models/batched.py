"""Batched step operators of a layered LLM: B requests' prefill, or B requests' decode step,
as one call.

A serving stage that takes concurrent requests together needs them: a decode step streams
every weight of the model once whatever the batch, so B sequences stepped together cost
about what one costs where weight streaming bounds the step (`agentc bench batching`
measures where it does). Each sequence keeps its own position and its own rows of the KV
caches (L, B, kv heads, S, head dim), so sequences at different points of their generations
share a step, as continuous batching needs. The model's own layer code runs with a batch
dimension (SmolLM._layer takes B rows); nothing of the architecture is written again here.

  prefill(weights..., ids (B, P) int32, length (B,) int32) -> logits (B, V), K, V
  decode(weights..., token (B,) int32, pos (B,) int32, K, V) -> logits (B, V), K, V, pos + 1
"""

from __future__ import annotations

from agentc.lazy import lazy_import

torch = lazy_import("torch")


def prefill(model, *args):
    """Each prompt padded to P; logits at each one's last real position."""
    emb, layers, (ids, length) = model._split_all(args)
    tok_emb, rope_cos, rope_sin, _ = emb
    B, P = ids.shape
    x = torch.index_select(tok_emb, 0, ids.reshape(-1)).reshape(B, P, -1)
    cos, sin = rope_cos[:P], rope_sin[:P]
    ks, vs = [], []
    for w in layers:
        x, k, v = model.block_prefill(*w, x, cos, sin)
        ks.append(k)
        vs.append(v)
    last = (torch.arange(P, dtype=torch.int32)[None] == (length - 1)[:, None]).to(x.dtype)  # (B, P) one-hot
    x_last = (x * last[:, :, None]).sum(dim=1, keepdim=True)
    return _head(model, emb, x_last), torch.stack(ks), torch.stack(vs)


def decode(model, *args):
    """One step of B sequences, sequence b writing cache slot pos[b] and attending to
    slots <= pos[b]."""
    emb, layers, (token, pos, k_cache, v_cache) = model._split_all(args)
    tok_emb, rope_cos, rope_sin, _ = emb
    slots = torch.arange(model.config.cache_len, dtype=torch.int32)
    here = (slots[None] == pos[:, None])[:, None, :, None]  # (B, 1, S, 1)
    bias = torch.where(slots[None] <= pos[:, None], 0.0, -1e9)[:, None]  # (B, T=1, S)
    x = torch.index_select(tok_emb, 0, token)[:, None]  # (B, 1, D)
    cos = torch.index_select(rope_cos, 0, pos)[:, None, None]  # (B, 1, 1, Dh)
    sin = torch.index_select(rope_sin, 0, pos)[:, None, None]

    def attend_to(k_layer, v_layer):
        def attend(q, k, v):
            kc, vc = torch.where(here, k, k_layer), torch.where(here, v, v_layer)
            return model._attention(q, kc, vc, bias), kc, vc
        return attend

    ks, vs = [], []
    for i, w in enumerate(layers):
        x, k, v = model._layer(w, x, cos, sin, attend_to(k_cache[i], v_cache[i]))
        ks.append(k)
        vs.append(v)
    return _head(model, emb, x), torch.stack(ks), torch.stack(vs), pos + 1


def _head(model, emb, x):
    """Logits (B, V) of x (B, 1, D), as one (B, D) x (D, V) product: a batched product against
    the shared embedding would have it broadcast (copied) once per sequence."""
    tok_emb, _, _, norm_f = emb
    return model._rms(x[:, 0], norm_f) @ tok_emb.T


def cache_shape(model, batch: int) -> tuple[int, ...]:
    """K (or V) for `batch` sequences: (layers, batch, kv heads, S, head dim)."""
    c = model.config
    return (c.layers, batch, c.kv_heads, c.cache_len, c.head_dim)
