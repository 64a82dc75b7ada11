"""Random-weight checkpoints of the supported architectures, written by transformers'
own `save_pretrained`: what tests and benchmarks import where real weights are not at
hand. A shape is given once in common terms and spelled per architecture here.

LLMs get SmolLM2's tokenizer (tokenizer.json, its config and chat template, as
transformers writes them from the installed GGUF); encoders get all-MiniLM-L6-v2's
tokenizer and a sentence-transformers configuration with the pooling asked for.
"""

from __future__ import annotations

import json
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path

from agentc.lazy import lazy_import

torch = lazy_import("torch")


@dataclass(frozen=True)
class Shape:
    dim: int = 64
    layers: int = 2
    heads: int = 4
    kv_heads: int = 2
    ffn: int = 96
    vocab: int = 49152
    max_positions: int = 256
    init: float = 0.3  # std of the random weights: large enough that greedy tokens vary


TINY = Shape()
SMOLLM2_135M = Shape(dim=576, layers=30, heads=9, kv_heads=3, ffn=1536, max_positions=8192, init=0.02)
QWEN25_05B = Shape(dim=896, layers=24, heads=14, kv_heads=2, ffn=4864, vocab=151936, max_positions=32768, init=0.02)
LLAMA32_3B = Shape(dim=3072, layers=28, heads=24, kv_heads=8, ffn=8192, vocab=128256, max_positions=131072, init=0.02)
MINILM_L6 = Shape(dim=384, layers=6, heads=12, kv_heads=12, ffn=1536, vocab=30522, max_positions=512, init=0.02)

LLMS = {  # name -> (config class, model class, architecture-specific settings)
    "llama": ("LlamaConfig", "LlamaForCausalLM", {}),
    "qwen2": ("Qwen2Config", "Qwen2ForCausalLM", {}),  # q/k/v biases
    "qwen3": ("Qwen3Config", "Qwen3ForCausalLM", {}),  # q/k norms
    "mistral": ("MistralConfig", "MistralForCausalLM", {"sliding_window": 12}),  # shorter than a prompt
    "gemma": ("GemmaConfig", "GemmaForCausalLM", {}),  # (1 + w) norms, embeddings scaled by sqrt(D)
    "phi3": ("Phi3Config", "Phi3ForCausalLM", {"pad_token_id": 0}),  # fused q/k/v and gate/up
    "gpt2": ("GPT2Config", "GPT2LMHeadModel", {}),  # learned positions, LayerNorm, Conv1D
}
ENCODERS = {
    "bert": ("BertConfig", "BertModel", {}),
    "roberta": ("RobertaConfig", "RobertaModel", {"pad_token_id": 1}),  # positions counted past padding
    "xlm-roberta": ("XLMRobertaConfig", "XLMRobertaModel", {"pad_token_id": 1}),
}
RERANKERS = {  # cross-encoders: one relevance logit per (query, passage) pair
    "bert-reranker": ("BertConfig", "BertForSequenceClassification", {"num_labels": 1}),
    # (two token types: the random checkpoints get BERT's tokenizer, which marks the passage with type 1)
    "xlm-roberta-reranker": ("XLMRobertaConfig", "XLMRobertaForSequenceClassification",
                             {"num_labels": 1, "pad_token_id": 1, "type_vocab_size": 2}),
}


ARCHS = {**LLMS, **ENCODERS, **RERANKERS}


def _config(arch: str, s: Shape, extra: dict):
    import transformers

    config_cls, _, own = ARCHS[arch]
    if arch == "gpt2":
        common = {"n_embd": s.dim, "n_layer": s.layers, "n_head": s.heads, "n_inner": s.ffn,
                  "n_positions": s.max_positions}
    else:
        common = {"hidden_size": s.dim, "num_hidden_layers": s.layers, "num_attention_heads": s.heads,
                  "intermediate_size": s.ffn, "max_position_embeddings": s.max_positions}
        if arch in LLMS:
            common.update(num_key_value_heads=s.kv_heads, head_dim=s.dim // s.heads)
    if arch in LLMS:
        common.update(bos_token_id=1, eos_token_id=2, tie_word_embeddings=True)
    return getattr(transformers, config_cls)(vocab_size=s.vocab, initializer_range=s.init,
                                             **{**common, **own, **extra})


def write(arch: str, directory: Path, shape: Shape = TINY, dtype: str = "float32", pooling: str = "mean",
          **extra) -> Path:
    """A random checkpoint of `arch` in `directory` (seeded: the same each time)."""
    import transformers

    directory = Path(directory)
    model_cls = ARCHS[arch][1]
    config = _config(arch, shape, extra)
    transformers.utils.logging.disable_progress_bar()
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = getattr(transformers, model_cls)(config).eval().to(getattr(torch, dtype))
        model.save_pretrained(directory)
    if arch in LLMS:
        for name, data in smollm2_tokenizer_files().items():
            (directory / name).write_bytes(data)
    else:
        _encoder_files(directory, shape, pooling)
    return directory


def write_config(arch: str, directory: Path, shape: Shape, **extra) -> Path:
    """An LLM's config.json and tokenizer, no weights: a model `agentc place` prices (a
    larger architecture than this machine can hold) and `agentc compile` refuses."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    config = _config(arch, shape, extra)
    config.architectures = [ARCHS[arch][1]]
    config.save_pretrained(directory)
    for name, data in smollm2_tokenizer_files().items():
        (directory / name).write_bytes(data)
    return directory


def smollm2_tokenizer_files() -> dict[str, bytes]:
    """SmolLM2's tokenizer files by name, converted from the installed GGUF once, then cached."""
    from agentc.models import assets
    from agentc.models.hf import gguf_dir

    return gguf_dir.tokenizer_files(assets.smollm2_gguf())


def _encoder_files(directory: Path, shape: Shape, pooling: str) -> None:
    from agentc.models import assets

    src = assets.minilm_dir()
    for f in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt", "modules.json",
              "sentence_bert_config.json"):
        shutil.copy(src / f, directory / f)
    (directory / "1_Pooling").mkdir(exist_ok=True)
    modes = {"cls": "cls_token", "mean": "mean_tokens", "max": "max_tokens"}
    (directory / "1_Pooling" / "config.json").write_text(json.dumps(
        {"word_embedding_dimension": shape.dim, **{f"pooling_mode_{m}": k == pooling for k, m in modes.items()}}))
