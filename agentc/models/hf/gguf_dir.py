"""A model directory that holds a GGUF file instead of config.json and safetensors (what
llama.cpp users have): converted once into the Hugging Face layout in agentc's cache, which
the generic import then reads like any other directory.

transformers reads the GGUF's metadata (config, tokenizer, chat template); each tensor is
dequantised by the gguf package, put back in transformers' layout by transformers' tensor
processor (llama.cpp's reordering of the rotary query/key rows undone) and written to one
float32 model.safetensors a tensor at a time, so the conversion holds one tensor in memory,
never the model. A quantisation type, an architecture or a file transformers does not read
is one line naming the file.
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
    from agentc.models.assets import file_key

    return {**file_key(gguf.resolve()), "v": 1}


def converted(directory: Path) -> Path:
    """The Hugging Face directory converted from `directory`'s GGUF file (cached)."""
    from agentc import store

    gguf = gguf_file(directory)
    if gguf is None:
        raise GGUFError(f"{directory}: no config.json and no .gguf file (not a model directory)")
    return store.cached_dir("gguf-models", _key(gguf), lambda out: _write(gguf, out))


def _write(gguf: Path, out: Path) -> None:
    config = _config(gguf)
    config.save_pretrained(out)
    _write_weights(gguf, config, out / "model.safetensors")
    for name, data in tokenizer_files(gguf).items():
        (out / name).write_bytes(data)


def _config(gguf: Path):
    """transformers' config of the GGUF's model (from its metadata; no tensor read)."""
    from transformers import AutoConfig

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            config = AutoConfig.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        except _UNREADABLE as e:
            raise GGUFError(f"{gguf}: transformers cannot read it ({str(e).splitlines()[0]})") from None
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    from agentc.models.hf.families import UnsupportedArchitecture, family

    arch = MODEL_FOR_CAUSAL_LM_MAPPING_NAMES.get(config.model_type)
    if arch is None:
        raise GGUFError(f"{gguf}: model type '{config.model_type}' is not a language model transformers knows")
    try:
        family(arch, str(gguf), "llm")  # before converting, not after
    except UnsupportedArchitecture as e:
        raise GGUFError(str(e)) from None
    config.architectures = [arch]
    config.__dict__.pop("quantization_config", None)  # the weights written are float32
    return config


def _write_weights(gguf: Path, config, dest: Path) -> None:
    """Each GGUF tensor dequantised (gguf's `dequantize`), put in transformers' layout by its
    tensor processor (e.g. Llama's rotary rows reordered back) and named as transformers
    names it, written to one float32 safetensors file a tensor at a time: the data goes to
    a spill file while the header is made, then both into `dest`."""
    import shutil

    import numpy as np
    from accelerate import init_empty_weights
    from gguf import GGUFReader, dequantize
    from transformers import AutoModelForCausalLM
    from transformers import modeling_gguf_pytorch_utils as hf_gguf

    try:
        reader = GGUFReader(str(gguf))
        meta = hf_gguf.load_gguf_checkpoint(str(gguf), return_tensors=False)
    except _UNREADABLE as e:
        raise GGUFError(f"{gguf}: transformers cannot read it ({str(e).splitlines()[0]})") from None
    with init_empty_weights(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        template = AutoModelForCausalLM.from_config(config)
    arch = hf_gguf.read_field(reader, "general.architecture")[0]  # what transformers keys its processors by
    processor = hf_gguf.TENSOR_PROCESSORS.get(arch, hf_gguf.TensorProcessor)(config=meta["config"])
    names = hf_gguf.get_gguf_hf_weights_map(template, processor)
    tied = getattr(config, "tie_word_embeddings", False)
    header, offset = {}, 0
    spill = dest.with_suffix(".data")
    with open(spill, "wb") as f:
        for t in reader.tensors:
            try:
                w = dequantize(t.data, t.tensor_type)
            except (NotImplementedError, ValueError, KeyError) as e:
                raise GGUFError(f"{gguf}: tensor {t.name}: quantization {t.tensor_type.name} is not handled "
                                f"({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None
            r = processor.process(weights=w, name=t.name, tensor_key_mapping=names, parsed_parameters=meta)
            if r.name not in names or (tied and names[r.name] == "lm_head.weight"):
                continue
            data = np.ascontiguousarray(r.weights, dtype=np.float32)
            f.write(data.tobytes())
            header[names[r.name]] = {"dtype": "F32", "shape": list(data.shape),
                                     "data_offsets": [offset, offset + data.nbytes]}
            offset += data.nbytes
    head = json.dumps(header, separators=(",", ":")).encode()
    head += b" " * (-len(head) % 8)  # the data starts 8-byte aligned
    with open(dest, "wb") as out, open(spill, "rb") as data:
        out.write(len(head).to_bytes(8, "little") + head)
        shutil.copyfileobj(data, out, 16 << 20)
    spill.unlink()


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
