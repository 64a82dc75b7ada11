"""Named models that graph.py files refer to.

A name resolves to one architecture and one set of weights, so the compiler, the runtime
and the reference interpreter all see the same model. The tiny random-weight models are
the defaults (tests and CI); the real ones load their files lazily, on first use of their
weights or tokenizer, from offline packages (see agentc.models.assets).

The real models are directories read by the generic import (agentc.models.hf), like any
model a user brings: `smollm2-135m` is the packaged SmolLM2-135M-Instruct GGUF, `minilm-l6` the
packaged all-MiniLM-L6-v2 directory.

Every model offers the host-side tokenizer API the runtime calls:
  encoders: `tokenize(text) -> ids (1, max_len) int32`
  decoders: `tokenize_prompt(text) -> (ids (1, prompt_len), length (1,))`, `prompt_tokens(text)`
            (the same and how many tokens did not fit), `detokenize(tokens) -> text`,
            and `eos`, the token after which generation stops
and `layered` (True: decomposed per layer, see agentc.models.kernels). Directory models
also offer `tokenizer_json()`; builds carry their small files (`carried`), so a build runs
where the model directory or package is not.

`<model>-random` is a real architecture with seeded random weights and the real tokenizer
(a checkpoint written once by agentc.models.hf.random_checkpoint into the cache): what
benchmarks run where the real weights cannot be carried.
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path

from agentc.models import builtin_dirs
from agentc.models.decoder import Decoder, DecoderConfig
from agentc.models.encoder import Encoder, EncoderConfig

ENCODERS = {"tiny-encoder": (Encoder, EncoderConfig("tiny-encoder"))}
DECODERS = {"tiny-lm": (Decoder, DecoderConfig("tiny-lm"))}


# The config agentc derives from a model's files, as a build carries it (models/<model>/).
DERIVED = "agentc-config.json"


class UnknownModel(KeyError):
    pass


@functools.cache
def encoder(name: str):
    """An encoder by name or directory."""
    if name not in ENCODERS:
        return _directory_model(name, "encoder")
    cls, config = ENCODERS[name]
    return cls(config)


@functools.cache
def decoder(name: str):
    """A language model by name or directory. `<name>@<P>x<S>` is the layered model `<name>`
    with prompt budget P and KV cache length S (same weights; see `variant_name`)."""
    base, _, budget = name.partition("@")
    if budget:
        return _with_budget(decoder(base), budget, name)
    if base in DECODERS:
        cls, config = DECODERS[base]
        return cls(config)
    return _directory_model(base, "llm")


@functools.cache
def _directory_model(name: str, kind: str):
    """The model in a directory (a built-in name, a path, a registered name or an
    AGENTC_MODELS name)."""
    from agentc.models import local_models

    found = builtin_dirs.resolve(name) or local_models.resolve(name)
    if found is None:
        known = [*{"encoder": ENCODERS, "llm": DECODERS}.get(kind, {}), *builtin_dirs.of_kind(kind)]
        what = {"encoder": "encoder model", "llm": "language model"}.get(kind, "reranker model")
        builtin = f"known: {', '.join(known)}; or " if known else "give "
        raise UnknownModel(f"unknown {what} '{name}' ({builtin}a model directory, a name given to "
                           f"agentc.models.register, or one on AGENTC_MODELS)")
    model = _imported(*found, kind)
    try:
        model.check()
    except _model_errors() as e:
        raise UnknownModel(str(e)) from None
    return model


def _model_errors() -> tuple[type[Exception], ...]:
    from agentc.models.hf.checkpoint import ModelFileError
    from agentc.models.hf.families import UnsupportedArchitecture

    return ModelFileError, UnsupportedArchitecture


def _imported(key: str, path, kind: str | None):
    """The imported model of `kind` (None: the directory's own) in directory `path`, named `key`.
    Its config comes from the directory's DERIVED file where a build carries one, else from
    transformers' reading of config.json: importing transformers (and torch with it) was most
    of the time a fresh replica took to open a build."""
    from agentc.models.hf.checkpoint import Checkpoint

    try:
        ckpt = Checkpoint(path)
        kind = ckpt.family(kind).kind
        if kind == "llm":
            from agentc.models.hf import causal_lm as m

            cls, config, derive = m.CausalLM, m.LMConfig, m.lm_config
        elif kind == "reranker":
            from agentc.models.hf import reranker_lm as m

            cls, config, derive = m.Reranker, m.RerankConfig, m.rerank_config
        else:
            from agentc.models.hf import encoder_lm as m

            cls, config, derive = m.Encoder, m.EncConfig, m.enc_config
        derived = Path(path) / DERIVED
        if derived.is_file():
            fields = json.loads(derived.read_text())
            return cls(config(**{**fields, "name": key, "path": str(ckpt.dir)}), ckpt)
        return cls(derive(ckpt, key), ckpt)
    except _model_errors() as e:
        raise UnknownModel(str(e)) from None


def derived_config(model) -> bytes:
    """The DERIVED file a build carries for `model` (its base, for a budget variant)."""
    import dataclasses

    base = getattr(model, "_base", None) or model
    return json.dumps(dataclasses.asdict(base.config), indent=1).encode()


def carried(name: str, key: str, path):
    """Model `name` (maybe with a `@PxS` budget) of a build, read from the copy of its small
    files that the build carries (`key`: its registry name when compiled): a build runs
    where the model's directory or package is not."""
    budget = name.partition("@")[2]
    model = _imported(key.partition("@")[0], path, None)
    return _with_budget(model, budget, name) if budget else model


def _with_budget(model, budget: str, name: str):
    """`model` with prompt budget and cache length `budget` ("<P>x<S>"), named
    `<its registry name>@<budget>` (what kernel symbols derive from)."""
    m = re.fullmatch(r"(\d+)x(\d+)", budget)
    if not m or not hasattr(model, "variant"):
        raise UnknownModel(f"'{name}': a prompt/cache budget '@<P>x<S>' applies to layered models only")
    return model.variant(f"{model.config.name}@{budget}", int(m.group(1)), int(m.group(2)))


def model(name: str):
    """An encoder or a language model by name or directory."""
    if name in ENCODERS:
        return encoder(name)
    base = name.partition("@")[0]
    if base in builtin_dirs.DIRS:
        kind = builtin_dirs.DIRS[base].kind
        return decoder(name) if kind == "llm" else _directory_model(name, kind)
    if base not in DECODERS:
        from agentc.models import local_models
        from agentc.models.hf.checkpoint import Checkpoint

        found = local_models.resolve(base)
        kind = Checkpoint(found[1]).family().kind if found is not None else "llm"
        if kind != "llm":
            return _directory_model(name, kind)
    return decoder(name)


def reranker(name: str):
    """A cross-encoder reranker by directory (or registered / AGENTC_MODELS name)."""
    return _directory_model(name, "reranker")


def register(name: str, path) -> None:
    """Make `name` stand for the model directory at `path` (graph.py files may then say
    `model="name"`)."""
    from agentc.models import local_models

    local_models.register(name, path)
    for cached in (encoder, decoder, _directory_model):  # a name given again stands for its new directory
        cached.cache_clear()


def variant_name(model: str, prompt_len: int | None = None, cache_len: int | None = None) -> str:
    """The registry name of `model` with another prompt budget and/or cache length."""
    if prompt_len is None and cache_len is None:
        return model
    c = decoder(model.partition("@")[0]).config
    return f"{model.partition('@')[0]}@{prompt_len or c.prompt_len}x{cache_len or c.cache_len}"
