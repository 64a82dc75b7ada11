"""Named models that graph.py files refer to.

A name resolves to one architecture and one set of weights, so the compiler, the runtime
and the reference interpreter all see the same model.
"""

from __future__ import annotations

import functools

from agentc.models.decoder import Decoder, DecoderConfig
from agentc.models.encoder import Encoder, EncoderConfig

ENCODERS = {"tiny-encoder": EncoderConfig("tiny-encoder")}
DECODERS = {"tiny-lm": DecoderConfig("tiny-lm")}


class UnknownModel(KeyError):
    pass


@functools.cache
def encoder(name: str) -> Encoder:
    if name not in ENCODERS:
        raise UnknownModel(f"unknown encoder model '{name}' (known: {', '.join(ENCODERS)})")
    return Encoder(ENCODERS[name])


@functools.cache
def decoder(name: str) -> Decoder:
    if name not in DECODERS:
        raise UnknownModel(f"unknown language model '{name}' (known: {', '.join(DECODERS)})")
    return Decoder(DECODERS[name])
