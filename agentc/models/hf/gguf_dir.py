"""A model directory that holds a GGUF file instead of config.json and safetensors (what
llama.cpp users have): converted once into the Hugging Face layout in agentc's cache, which
the generic import then reads like any other directory.

transformers reads the GGUF (its config, tokenizer and chat template from the metadata; its
tensors dequantised to float32, with llama.cpp's reordering of the rotary query/key rows
undone); the conversion writes config.json, one float32 model.safetensors and the tokenizer
files. It holds the whole model in float32 once, while converting. A quantisation type or an
architecture transformers does not read is one line naming the file.
"""

from __future__ import annotations

import json
import struct
import tempfile
import warnings
from pathlib import Path

from agentc.lazy import lazy_import

torch = lazy_import("torch")


class GGUFError(ValueError):
    pass


# What transformers' GGUF reader raises on a file it cannot read (a truncated header is a
# struct.error; an unknown quantisation or architecture a ValueError or KeyError ...).
_UNREADABLE = (ValueError, KeyError, IndexError, TypeError, NotImplementedError, OSError, RuntimeError, struct.error)


def gguf_file(directory: Path) -> Path | None:
    """The directory's GGUF file, if it holds one."""
    found = sorted(Path(directory).glob("*.gguf"))
    return found[0] if found else None


def _key(gguf: Path) -> dict:
    st = gguf.stat()
    return {"gguf": str(gguf.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns, "v": 1}


def converted(directory: Path) -> Path:
    """The Hugging Face directory converted from `directory`'s GGUF file (cached)."""
    from agentc import store

    gguf = gguf_file(directory)
    if gguf is None:
        raise GGUFError(f"{directory}: no config.json and no .gguf file (not a model directory)")
    return store.cached_dir("gguf-models", _key(gguf), lambda out: _write(gguf, out))


def _write(gguf: Path, out: Path) -> None:
    from safetensors.torch import save_file
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
        except _UNREADABLE as e:
            raise GGUFError(f"{gguf}: transformers cannot read it ({str(e).splitlines()[0]})") from None
    config = model.config
    config.architectures = [type(model).__name__]
    config.__dict__.pop("quantization_config", None)  # the weights written are float32
    config.save_pretrained(out)
    tied = getattr(config, "tie_word_embeddings", False)
    save_file({k: v.contiguous() for k, v in model.state_dict().items() if not (tied and k == "lm_head.weight")},
              str(out / "model.safetensors"))
    del model
    for name, data in tokenizer_files(gguf).items():
        (out / name).write_bytes(data)


def tokenizer_files(gguf: Path) -> dict[str, bytes]:
    """The GGUF's tokenizer as transformers saves it (tokenizer.json, its config with the
    chat template), by file name; converted once, then cached."""
    from agentc import store

    def make() -> bytes:
        import transformers

        with warnings.catch_warnings(), tempfile.TemporaryDirectory() as tmp:
            warnings.simplefilter("ignore")
            try:
                tok = transformers.AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
            except _UNREADABLE as e:
                raise GGUFError(f"{gguf}: no tokenizer transformers can read ({str(e).splitlines()[0]})") from None
            tok.save_pretrained(tmp)
            return json.dumps({f.name: f.read_text() for f in Path(tmp).iterdir()}).encode()

    files = json.loads(store.cached_bytes("tokenizers", {**_key(gguf), "files": 1}, make, ".json"))
    return {name: text.encode() for name, text in files.items()}
