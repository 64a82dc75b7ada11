"""agentc's attention for imported models, registered with transformers' attention
interface (`AttentionInterface`) under the name "agentc": every architecture that looks its
attention up there (Llama, Qwen, Mistral, Gemma, Phi-3, GPT-2, BERT ...) runs it in place of
its eager attention.

Why not transformers' eager attention: it repeats each key/value head for every query head
of its group (`repeat_kv`), a copy of the whole cache per layer and step, and gives the
compiler (B*H) products of M = T rows. The grouped form puts a group's query rows into one
product with its key/value head, no copy: a decode step 8% faster on this CPU
(experiments/hf-import). Where a runtime compiles M = 1 products better (IREE's CUDA code
generation), a decode step's attention takes the per-head form, repeating them as eager
does. Which form a runtime gets is a model form (agentc.models.forms, `decode_attention`),
set around the call (`form`).
"""

from __future__ import annotations

import contextlib
import contextvars

from agentc.lazy import lazy_import

torch = lazy_import("torch")

NAME = "agentc"
_FORM = contextvars.ContextVar("agentc_attention_form", default="grouped")


@contextlib.contextmanager
def form(name: str):
    """Attention in `name` form (grouped or per_head) for the calls inside."""
    token = _FORM.set(name)
    try:
        yield
    finally:
        _FORM.reset(token)


def attention(module, query, key, value, attention_mask, scaling: float | None = None, dropout: float = 0.0,
              softcap: float | None = None, **kwargs):
    """query (B, Hq, T, D), key/value (B, Hkv, K, D), an additive mask broadcastable to
    (B, Hq, T, K) -> (attention output (B, T, Hq, D), None), as transformers' attention
    functions return it."""
    B, Hq, T, D = query.shape
    Hkv = key.shape[1]
    g = Hq // Hkv
    scale = D ** -0.5 if scaling is None else scaling
    if g == 1 or (T == 1 and _FORM.get() == "per_head"):
        if g > 1:
            key, value = _repeated(key, value, g)
        s = _capped(torch.matmul(query, key.transpose(-1, -2)) * scale, softcap)
        if attention_mask is not None:
            s = s + attention_mask
        out = torch.matmul(torch.softmax(s, dim=-1, dtype=torch.float32).to(query.dtype), value)
    else:
        qg = query.reshape(B, Hkv, g * T, D)
        s = _capped(torch.matmul(qg, key.transpose(-1, -2)) * scale, softcap).reshape(B, Hkv, g, T, -1)
        if attention_mask is not None:
            m = attention_mask
            s = s + (m.reshape(m.shape[0], Hkv, g, *m.shape[2:]) if m.shape[1] > 1 else m[:, :, None])
        p = torch.softmax(s, dim=-1, dtype=torch.float32).to(query.dtype).reshape(B, Hkv, g * T, -1)
        out = torch.matmul(p, value).reshape(B, Hq, T, D)
    return out.transpose(1, 2).contiguous(), None


def _repeated(key, value, g: int):
    """Each key/value head repeated for the g query heads of its group. Keys and values of
    one shape are repeated as one tensor, one kernel instead of two (a decode step issues
    one per layer, each a few microseconds on a GPU whatever its size)."""
    if key.shape != value.shape or key.dtype != value.dtype:
        return key.repeat_interleave(g, dim=1), value.repeat_interleave(g, dim=1)
    B, H, K, D = key.shape
    keys = torch.arange(2 * g, device=key.device).reshape(2, 1, 1, g, 1, 1) < g  # (2, 1, 1, g, 1, 1): keys, then values
    both = torch.where(keys, key[None, :, :, None], value[None, :, :, None]).reshape(2, B, H * g, K, D)
    return both[0], both[1]


def _capped(s, softcap):
    return s if not softcap else torch.tanh(s / softcap) * softcap


def register() -> str:
    """Register the attention with transformers (idempotent); its name."""
    from transformers import AttentionInterface

    AttentionInterface.register(NAME, attention)
    return NAME
