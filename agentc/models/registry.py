"""Named models that graph.py files refer to.

A name resolves to one architecture and one set of weights, so the compiler, the runtime
and the reference interpreter all see the same model. The tiny random-weight models are
the defaults (tests and CI); the real ones load their files lazily, on first use of their
weights or tokenizer, from offline packages (see agentc.models.assets).

Every model offers the host-side tokenizer API the runtime calls:
  encoders: `tokenize(text) -> ids (1, max_len) int32`
  decoders: `tokenize_prompt(text) -> (ids (1, prompt_len), length (1,))`, `detokenize(tokens) -> text`
and `layered` (True: decomposed per layer, see agentc.kernels).
"""

from __future__ import annotations

import functools

from agentc.models.decoder import Decoder, DecoderConfig
from agentc.models.encoder import Encoder, EncoderConfig
from agentc.models.minilm import MiniLM, MiniLMConfig
from agentc.models.smollm import SmolLM, SmolLMConfig

ENCODERS = {"tiny-encoder": (Encoder, EncoderConfig("tiny-encoder")),
            "minilm-l6": (MiniLM, MiniLMConfig("minilm-l6"))}
DECODERS = {"tiny-lm": (Decoder, DecoderConfig("tiny-lm")),
            "smollm2-135m": (SmolLM, SmolLMConfig("smollm2-135m"))}


class UnknownModel(KeyError):
    pass


@functools.cache
def encoder(name: str):
    if name not in ENCODERS:
        raise UnknownModel(f"unknown encoder model '{name}' (known: {', '.join(ENCODERS)})")
    cls, config = ENCODERS[name]
    return cls(config)


@functools.cache
def decoder(name: str):
    if name not in DECODERS:
        raise UnknownModel(f"unknown language model '{name}' (known: {', '.join(DECODERS)})")
    cls, config = DECODERS[name]
    return cls(config)
