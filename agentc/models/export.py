"""PyTorch function -> linalg-on-tensors `func.func` text, through torch-mlir's FX importer.

Weights stay function arguments (never inlined constants): the first `len(param_names)`
arguments are weights, recorded in the function's `agent.params` attribute, and the runtime
binds them to resident device copies. Exports are cached on disk by a key over the model
config, the operator, the example shapes, the torch/torch-mlir versions and the source of
every module in agentc.models (operators call shared helpers such as greedy sampling, whose
edits must reach the cache too), because the FX export is the slowest step of a warm compile.
"""

from __future__ import annotations

import functools
import hashlib
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

from agentc import store
from agentc.lazy import lazy_import

torch = lazy_import("torch")

def export_function(
    fn: Callable,
    args: list[np.ndarray],
    func_name: str,
    param_names: list[str],
    key: dict,
) -> str:
    """Return the MLIR text of a module holding one `func.func @func_name`, weights first.
    The caller records which arguments are weights (`param_names`)."""
    import inspect
    from importlib.metadata import version

    try:
        source = inspect.getsource(fn)
    except (OSError, TypeError):
        source = repr(getattr(fn, "__code__", fn))
    full_key = dict(key, func=func_name, source=source, shapes=[(tuple(a.shape), str(a.dtype)) for a in args],
                    torch=version("torch"), torch_mlir=version("torch-mlir"), models=_models_digest(), v=3)
    hit = store.lookup("exports", full_key)
    if hit is not None:
        return hit.read_text()
    # Weights are arguments whose values the export never reads: empty tensors of their
    # shapes stand for them (no copy of a mapped checkpoint). Activations are examples.
    n = len(param_names)
    tensors = [torch.empty(a.shape, dtype=_torch_dtype(a.dtype)) for a in args[:n]]
    tensors += [torch.from_numpy(np.ascontiguousarray(a) if a.flags.writeable else np.array(a)) for a in args[n:]]

    out = linalg_text(as_module(fn), tensors, func_name)
    store.put_bytes("exports", full_key, out.encode(), ".mlir")
    return out


def _torch_dtype(dtype: np.dtype):
    from agentc.models.half_weights import is_bfloat16

    return torch.bfloat16 if is_bfloat16(dtype) else torch.from_numpy(np.empty(0, dtype)).dtype


def as_module(fn):
    """A torch.nn.Module whose forward is `fn` (what torch.export takes)."""
    class Wrap(torch.nn.Module):
        def forward(self, *xs):
            return fn(*xs)

    return Wrap()


def linalg_text(module, tensors: list, func_name: str) -> str:
    """`module` over example `tensors` as linalg-on-tensors MLIR text (torch-mlir's FX
    importer, with agentc's decompositions), holding `func.func @func_name`."""
    from torch_mlir import fx

    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        return str(fx.export_and_import(module, *tensors, output_type="linalg-on-tensors", func_name=func_name,
                                        decomposition_table=_decompositions()))


def _cumsum(x, dim, dtype=None):
    """cumsum as a product with a triangular matrix of ones. torch-mlir lowers cumsum to
    `tm_tensor.scan`, which IREE's linalg input does not take; the axes that models
    accumulate over (positions of a sequence, e.g. RoBERTa's position ids) are short."""
    if dtype is None and not x.dtype.is_floating_point:
        dtype = torch.int64  # torch's promotion of integer cumsums
    x = x.to(dtype) if dtype is not None else x
    n = x.shape[dim]
    tri = torch.ones(n, n, dtype=x.dtype).triu()  # tri[j, i] = 1 where j <= i
    return torch.movedim(torch.movedim(x, dim, -1) @ tri, -1, dim)


@functools.cache
def _decompositions() -> dict:
    from torch_mlir.fx import get_decomposition_table

    return {**get_decomposition_table(), torch.ops.aten.cumsum.default: _cumsum}


@functools.cache
def _models_digest() -> str:
    """A hash of the sources of agentc.models and its subpackages (read once per process)."""
    h = hashlib.sha256()
    for f in sorted(Path(__file__).parent.rglob("*.py")):
        h.update(f.name.encode() + b"\0" + f.read_bytes())
    return h.hexdigest()
