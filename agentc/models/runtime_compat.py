"""Temporary bridge: host tokenization through the models' own tokenizers.

The runtime (runtime/session.py) tokenizes with the byte tokenizer of the tiny models.
Real models bring their own (WordPiece for MiniLM, BPE + chat template for SmolLM2), which
every model in agentc.models.registry exposes as `encoder.tokenize(text)`,
`decoder.tokenize_prompt(text)` and `decoder.detokenize(tokens)`. Until the runtime calls
those itself, `ensure_model_tokenizers()` routes the runtime's three tokenizer host ops
to them. It changes nothing when the runtime already does (the check reads its source),
and nothing for the tiny models, whose methods wrap the byte tokenizer they use today.
"""

from __future__ import annotations

import inspect

_patched = False


def runtime_has_model_tokenizers() -> bool:
    from agentc.runtime import session

    return "tokenize_prompt" in inspect.getsource(session._Request)


def ensure_model_tokenizers() -> bool:
    """Returns True when a patch was applied (now or earlier in this process)."""
    global _patched
    if _patched or runtime_has_model_tokenizers():
        return _patched
    from agentc.models import registry
    from agentc.runtime import session

    original_host_op = session._Request._host_op

    def _host_op(self, op):
        kind, a = op["kind"], op["attrs"]
        if kind in ("tokenize", "detokenize"):
            args = [self._host(v) for v in op["inputs"]]
            if kind == "tokenize" and len(op["outputs"]) == 2:
                return list(registry.decoder(a["model"]).tokenize_prompt(args[0]))
            if kind == "tokenize":
                return [registry.encoder(a["model"]).tokenize(args[0])]
            return [registry.decoder(a["model"]).detokenize(args)]
        return original_host_op(self, op)

    session._Request._host_op = _host_op
    _patched = True
    return True
