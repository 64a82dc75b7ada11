"""PyTorch function -> linalg-on-tensors `func.func` text, through torch-mlir's FX importer.

Weights stay function arguments (never inlined constants): the first `len(param_names)`
arguments are weights, recorded in the function's `agent.params` attribute, and the runtime
binds them to resident device copies. Exports are cached on disk by a key over the model
config, the operator, the example shapes and the torch/torch-mlir versions, because the
FX export is the slowest step of a warm compile.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path
from typing import Callable

import torch


def cache_dir() -> Path:
    root = Path(os.environ.get("AGENTC_CACHE", Path.home() / ".cache" / "agentc"))
    return root


class _Wrap(torch.nn.Module):
    def __init__(self, fn: Callable):
        super().__init__()
        self.fn = fn

    def forward(self, *args):
        return self.fn(*args)


def export_function(
    fn: Callable,
    args: list,
    func_name: str,
    param_names: list[str],
    key: dict,
) -> str:
    """Return the MLIR text of a module holding one `func.func @func_name`, weights first.
    The caller records which arguments are weights (`param_names`)."""
    from importlib.metadata import version

    import inspect

    try:
        source = inspect.getsource(fn)
    except (OSError, TypeError):
        source = repr(getattr(fn, "__code__", fn))
    full_key = dict(key, func=func_name, source=source, shapes=[(tuple(a.shape), str(a.dtype)) for a in args],
                    torch=torch.__version__, torch_mlir=version("torch-mlir"), v=2)
    digest = hashlib.sha256(json.dumps(full_key, sort_keys=True).encode()).hexdigest()[:24]
    path = cache_dir() / "exports" / f"{func_name}-{digest}.mlir"
    if path.exists():
        return path.read_text()
    from torch_mlir import fx

    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        module = fx.export_and_import(
            _Wrap(fn), *args, output_type="linalg-on-tensors", func_name=func_name
        )
    out = str(module)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(out)
    tmp.replace(path)
    return out

