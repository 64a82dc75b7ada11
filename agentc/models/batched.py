"""Batched step operators of a layered LLM: B requests' prefill, or B requests' decode step,
as one call.

A serving stage that takes concurrent requests together needs them: a decode step streams
every weight of the model once whatever the batch, so B sequences stepped together cost
about what one costs where weight streaming bounds the step (`agentc bench batching`
measures where it does). Each sequence keeps its own position and its own rows of the KV
caches (L, B, kv heads, S, head dim), so sequences at different points of their generations
share a step, as continuous batching needs. The model's own operators take B rows (the
decode step at B positions); only the choice of each prompt's last position is added here.

  prefill(weights..., ids (B, P) int32, length (B,) int32) -> logits (B, V), K, V
  decode(weights..., token (B,) int32, pos (B,) int32, K, V) -> logits (B, V), K, V, pos + 1
"""

from __future__ import annotations

from agentc.lazy import lazy_import

torch = lazy_import("torch")


def prefill(model, *args):
    """Each prompt padded to P; logits at each one's last real position."""
    emb, layers, (ids, length) = model._split_all(args)
    x, *pe = model.embed_prefill(*emb, ids)
    ks, vs = [], []
    for w in layers:
        x, k, v = model.block_prefill(*w, x, *pe)
        ks.append(k)
        vs.append(v)
    P = ids.shape[1]
    last = (torch.arange(P, dtype=torch.int32)[None] == (length - 1)[:, None]).to(x.dtype)  # (B, P) one-hot
    x_last = (x * last[:, :, None]).sum(dim=1, keepdim=True)
    return model.head_decode(*emb, x_last), torch.stack(ks), torch.stack(vs)


def decode(model, *args):
    """One step of B sequences, sequence b writing cache slot pos[b] and attending to
    slots <= pos[b]. The caches come and go stacked over the layers here (the model's own
    step takes one per layer)."""
    *rest, k, v = args
    out = model.decode(*rest, *k.unbind(0), *v.unbind(0))
    layers = k.shape[0]
    return out[0], torch.stack(out[1:1 + layers]), torch.stack(out[1 + layers:-1]), out[-1]


def cache_shape(model, batch: int) -> tuple[int, ...]:
    """K (or V) for `batch` sequences: (layers, batch, kv heads, S, head dim)."""
    c = model.config
    return (c.layers, batch, c.kv_heads, c.cache_len, c.head_dim)
