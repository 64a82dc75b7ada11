"""A Hugging Face model directory: config.json, safetensors weights, tokenizer files (or a
directory holding a GGUF file, read as the directory converted from it: agentc.models.hf.gguf_dir).

Everything is read lazily and without copies: the config when asked, the weights as views
of the memory-mapped safetensors files (converted to float32 one tensor at a time, and
only where stored otherwise), the tokenizer when text is first tokenized. A directory with
config.json alone is a model that can be placed and priced but not run.

Problems are one line naming the file at fault: a missing config or tokenizer, a tensor
missing from the weights or with a shape config.json disagrees with.
"""

from __future__ import annotations

import functools
import json
import warnings
from pathlib import Path

import numpy as np

from agentc.lazy import lazy_import
from agentc.models.hf.families import Family, family
from agentc.models.hf.safetensors_map import SafetensorsError, TensorMap

torch = lazy_import("torch")


class ModelFileError(ValueError):
    pass


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except OSError as e:
        raise ModelFileError(f"{path}: cannot read ({e.strerror})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ModelFileError(f"{path}: not valid JSON ({e})") from None


class Checkpoint:
    def __init__(self, path: str | Path):
        from agentc.models.hf import gguf_dir

        self.dir = Path(path).expanduser().resolve()
        self.config_file = self.dir / "config.json"
        gguf = gguf_dir.gguf_file(self.dir)
        # the GGUF file the directory is converted from (None: read as it is)
        self.gguf: Path | None = gguf if gguf is not None and not any(self.dir.glob("*.safetensors")) else None
        if self.gguf is not None:
            try:
                self.dir = gguf_dir.converted(self.dir)  # read as the Hugging Face directory made from it
            except gguf_dir.GGUFError as e:
                raise ModelFileError(str(e)) from None
            self.config_file = self.dir / "config.json"
        if not self.config_file.is_file():
            raise ModelFileError(f"{self.config_file}: no such file (a model directory needs its config.json, "
                                 f"or a .gguf file)")
        self.raw = _read_json(self.config_file)
        archs = self.raw.get("architectures") or []
        if not archs:
            raise ModelFileError(f"{self.config_file}: no 'architectures' entry, so the model's class is unknown")
        self.architecture: str = archs[0]

    def family(self, kind: str | None = None) -> Family:
        return family(self.architecture, str(self.config_file), kind)

    @functools.cached_property
    def hf_config(self):
        """transformers' config of the model, with agentc's attention (plain matmuls and
        softmax: what the FX importer lowers, and what takes our explicit additive mask;
        agentc.models.hf.attention)."""
        from transformers import AutoConfig

        from agentc.models.hf import attention

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                cfg = AutoConfig.from_pretrained(str(self.dir), local_files_only=True)
            except (ValueError, KeyError, OSError) as e:
                raise ModelFileError(f"{self.config_file}: transformers cannot read it "
                                     f"({str(e).splitlines()[0]})") from None
        cfg._attn_implementation = attention.register()
        return cfg

    def template(self):
        """The architecture's own module tree with parameters on the meta device (no memory,
        no initialisation) and buffers real: the code the kernels run, without its weights."""
        import transformers
        from accelerate import init_empty_weights

        cls = getattr(transformers, self.architecture)
        with warnings.catch_warnings(), init_empty_weights(include_buffers=False):
            warnings.simplefilter("ignore")
            model = cls(self.hf_config)
        _conv1d_as_linear(model)
        return model.eval()

    # The files a build carries so that it runs without the model directory: what the host
    # operators read (config, tokenizer, chat template, end tokens, pooling), not weights.
    CARRIED = ("config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
               "special_tokens_map.json", "chat_template.jinja", "modules.json", "sentence_bert_config.json")

    def carried_files(self) -> dict[str, bytes]:
        """{relative path: contents} of the model's small files (CARRIED, and the config of
        each sentence-transformers module modules.json names)."""
        names = [n for n in self.CARRIED if (self.dir / n).is_file()]
        if (self.dir / "modules.json").is_file():
            names += [f"{m['path']}/config.json" for m in _read_json(self.dir / "modules.json")
                      if m.get("path") and (self.dir / m["path"] / "config.json").is_file()]
        return {n: (self.dir / n).read_bytes() for n in names}

    # -- weights ------------------------------------------------------------------------
    @functools.cached_property
    def weight_files(self) -> list[Path]:
        index = self.dir / "model.safetensors.index.json"
        if index.is_file():
            shards = sorted(set(_read_json(index).get("weight_map", {}).values()))
            missing = [s for s in shards if not (self.dir / s).is_file()]
            if missing:
                raise ModelFileError(f"{index}: names shard {missing[0]}, which is not in {self.dir}")
            return [self.dir / s for s in shards]
        return sorted(self.dir.glob("*.safetensors"))

    @property
    def has_weights(self) -> bool:
        return bool(self.weight_files)

    @functools.cached_property
    def tensors(self) -> TensorMap:
        if not self.weight_files:
            raise ModelFileError(f"{self.dir}: no *.safetensors weights (a config-only model can be placed "
                                 f"and priced, not run)")
        try:
            return TensorMap(self.weight_files)
        except SafetensorsError as e:
            raise ModelFileError(str(e)) from None

    def entry(self, name: str, shape: tuple[int, ...], prefix: str = "") -> str:
        """The checkpoint's key for weight `name` (as the module tree names it; `prefix` is
        the base model's attribute, which checkpoints of a base model leave out), after
        checking its shape against `shape`: reads the header only."""
        t = self.tensors
        for key in (name, name.removeprefix(prefix + ".") if prefix else name, f"{prefix}.{name}" if prefix else name):
            if key in t:
                break
        else:
            raise ModelFileError(f"{self.weight_files[0]}: no tensor '{name}' (the {self.architecture} "
                                 f"described by {self.config_file.name} has one)")
        e = t.entries[key]
        if tuple(e.shape) != tuple(shape):
            raise ModelFileError(f"{e.file}: tensor '{key}' has shape {list(e.shape)}, but {self.config_file} "
                                 f"makes it {list(shape)}")
        return key

    def weight(self, name: str, shape: tuple[int, ...], prefix: str = "") -> np.ndarray:
        """Float32 weight `name` (see `entry`). A config-only model's weights are zero-stride
        arrays of the right shape: the exporter and the cost models read shapes only."""
        if not self.has_weights:
            return np.broadcast_to(np.zeros((), np.float32), shape)
        key = self.entry(name, shape, prefix)
        try:
            return self.tensors.f32(key)
        except SafetensorsError as e:
            raise ModelFileError(str(e)) from None

    def check(self, modules) -> None:
        """Fail now, naming the file, if the tokenizer is missing or a weight of the
        `(module, name_of, prefix)` triples is missing or misshapen (headers only)."""
        _ = self.tokenizer_file
        if self.has_weights:
            for module, name_of, prefix in modules:
                flipped = _transposed_params(module)
                for n, p in module.named_parameters():
                    self.entry(name_of(n), tuple(p.shape)[::-1] if n in flipped else tuple(p.shape), prefix)

    def module_weights(self, module, name_of, base: str = "") -> dict[str, np.ndarray]:
        """`module`'s weights by its own parameter names: parameters from the checkpoint
        (`name_of(param)` is the checkpoint's name), buffers as the architecture computes
        them (rotary frequencies, position ids)."""
        flipped = _transposed_params(module)
        out = {}
        for n, p in module.named_parameters():
            if n in flipped:  # stored (in, out) in the checkpoint, run as (out, in)
                w = self.weight(name_of(n), tuple(p.shape)[::-1], base).T
                out[n] = np.ascontiguousarray(w) if self.has_weights else w
            else:
                out[n] = self.weight(name_of(n), tuple(p.shape), base)
        out.update({n: b.detach().numpy() for n, b in module.named_buffers()})
        return out

    @functools.cached_property
    def weights_key(self) -> dict:
        """A cheap identity of the weight files (path, size, modification time)."""
        return {str(f): [f.stat().st_size, f.stat().st_mtime_ns] for f in self.weight_files}

    # -- tokenizer ----------------------------------------------------------------------
    @property
    def tokenizer_file(self) -> Path:
        path = self.dir / "tokenizer.json"
        if not path.is_file():
            raise ModelFileError(f"{path}: no such file (agentc tokenizes with the model's tokenizer.json)")
        return path

    @functools.cached_property
    def tokenizer_config(self) -> dict:
        path = self.dir / "tokenizer_config.json"
        return _read_json(path) if path.is_file() else {}

    @functools.cached_property
    def chat_template(self) -> str | None:
        """The model's chat template: chat_template.jinja, else tokenizer_config.json's."""
        path = self.dir / "chat_template.jinja"
        if path.is_file():
            return path.read_text()
        t = self.tokenizer_config.get("chat_template")
        if isinstance(t, list):  # named templates: the default one
            t = next((x["template"] for x in t if x.get("name") == "default"), None)
        return t

    def eos_ids(self) -> list[int]:
        """End-of-generation tokens: generation_config.json's, else config.json's."""
        gen = self.dir / "generation_config.json"
        for src in ((_read_json(gen) if gen.is_file() else {}), self.raw):
            eos = src.get("eos_token_id")
            if eos is not None:
                return [int(e) for e in (eos if isinstance(eos, list) else [eos])]
        return []


def _transposed_params(module) -> set[str]:
    """The parameters of `module` that run transposed from how the checkpoint stores them."""
    return {f"{n}.weight" if n else "weight" for n, m in module.named_modules() if getattr(m, "transposed", False)}


def _conv1d_as_linear(model) -> None:
    """Every transformers `Conv1D` of `model` (GPT-2's projections: y = x W + b, W stored
    (in, out)) replaced by a linear layer over W^T, in place. IREE's CPU code runs the
    (out, in) matrix-vector product of a decode step faster than the (in, out)
    vector-matrix one (experiments/hf-import/conv1d_layout.py); the checkpoint's W is
    transposed once, as it is read (`module_weights`)."""
    from transformers.pytorch_utils import Conv1D

    for name, m in list(model.named_modules()):
        if isinstance(m, Conv1D):
            parent, _, attr = name.rpartition(".")
            setattr(model.get_submodule(parent) if parent else model, attr, _linear_class()(m))


@functools.cache
def _linear_class():
    class Conv1DAsLinear(torch.nn.Module):
        transposed = True  # its weight is the checkpoint's, transposed

        def __init__(self, conv):
            super().__init__()
            self.weight = torch.nn.Parameter(torch.empty(tuple(conv.weight.shape)[::-1], device="meta"))
            self.bias = conv.bias

        def forward(self, x):
            return torch.nn.functional.linear(x, self.weight, self.bias)

    return Conv1DAsLinear
