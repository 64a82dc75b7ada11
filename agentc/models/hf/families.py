"""The architectures agentc imports, and where each keeps its parts.

Nothing here is model math: a family names the attributes under which transformers'
implementation of an architecture holds its embeddings, layers, final norm and rotary
embedding, and how a layer is called. The layers themselves run as transformers wrote them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Family:
    kind: str  # "llm", "encoder" or "reranker"
    root: str  # the attribute holding the base model ("" for the model itself)
    layers: str  # the layer list under root
    embed: tuple[str, ...]  # modules under root that run before the first layer
    norm: str | None = None  # the final norm under root (llm)
    rotary: str | None = None  # the rotary embedding under root: its (cos, sin) go to every layer
    positions: str | None = None  # learned position embeddings under root, added to the tokens
    head: tuple[str, ...] = ()  # modules after the layers, from the model itself (reranker)


_LLAMA = Family("llm", "model", "layers", ("embed_tokens",), norm="norm", rotary="rotary_emb")
_GPT2 = Family("llm", "transformer", "h", ("wte",), norm="ln_f", positions="wpe")
_BERT = Family("encoder", "", "encoder.layer", ("embeddings",))

ARCHITECTURES: dict[str, Family] = {
    "LlamaForCausalLM": _LLAMA,
    "Qwen2ForCausalLM": _LLAMA,
    "Qwen3ForCausalLM": _LLAMA,
    "MistralForCausalLM": _LLAMA,
    "GemmaForCausalLM": _LLAMA,
    "Phi3ForCausalLM": _LLAMA,
    "GPT2LMHeadModel": _GPT2,
    "BertModel": _BERT,
    "RobertaModel": _BERT,
    "XLMRobertaModel": _BERT,
    "BertForSequenceClassification": Family("reranker", "bert", "encoder.layer", ("embeddings",),
                                            head=("bert.pooler", "classifier")),
    "XLMRobertaForSequenceClassification": Family("reranker", "roberta", "encoder.layer", ("embeddings",),
                                                  head=("classifier",)),
}


class UnsupportedArchitecture(ValueError):
    pass


def family(architecture: str, where: str, kind: str | None = None) -> Family:
    """The family of `architecture` (from `where`, a config.json), or a one-line error
    naming it and the supported ones (of `kind` where given)."""
    fam = ARCHITECTURES.get(architecture)
    if fam is None or (kind is not None and fam.kind != kind):
        known = ", ".join(a for a, f in ARCHITECTURES.items() if kind is None or f.kind == kind)
        what = f"{kind} architecture" if kind else "architecture"
        raise UnsupportedArchitecture(f"{where}: {what} '{architecture}' is not supported (supported: {known})")
    return fam
