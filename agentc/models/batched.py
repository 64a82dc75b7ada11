"""Batched step operators of a layered LLM: B requests' prefill, or B requests' decode step,
as one call.

A serving stage that takes concurrent requests together needs them: a decode step streams
every weight of the model once whatever the batch, so B sequences stepped together cost
about what one costs where weight streaming bounds the step (`agentc bench batching`
measures where it does). Each sequence keeps its own position and its own rows of each
layer's KV caches (B, kv heads, S, head dim), so sequences at different points of their
generations share a step, as continuous batching needs. The model's own operators take B
rows (the decode step at B positions); only the choice of each prompt's last position is
added here. The caches are per layer, as the model's step takes them: caches stacked over
the layers were copied whole on each step, which made batches past 4 slower per sequence
on the CPU (experiments/kernel-forms/).

  prefill(weights..., ids (B, P) int32, length (B,) int32) -> logits (B, V), K_0..K_L-1, V_0..V_L-1
  decode(weights..., token (B,) int32, pos (B,) int32, K_0.., V_0..) -> logits (B, V), K_0.., V_0.., pos + 1
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
    return model.head_decode(*emb, x_last), *ks, *vs


def decode(model, *args):
    """One step of B sequences, sequence b writing cache slot pos[b] and attending to
    slots <= pos[b]."""
    return model.decode(*args)


def cache_shape(model, batch: int) -> tuple[int, ...]:
    """One layer's K (or V) for `batch` sequences: (batch, kv heads, S, head dim); a step
    takes 2 x layers of them."""
    c = model.config
    return (batch, c.kv_heads, c.cache_len, c.head_dim)
