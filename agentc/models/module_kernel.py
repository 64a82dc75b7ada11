"""The kernel of an `agentc.module` operator: the user's module exported with its
parameters and buffers as weights (group `module:<name>`)."""

from __future__ import annotations

import inspect

import numpy as np

from agentc.lazy import lazy_import
from agentc.models.export import export_function
from agentc.models.kernels import Kernel, sanitize

torch = lazy_import("torch")


def module_kernel(name: str, fn, examples: list[np.ndarray]) -> Kernel:
    if isinstance(fn, torch.nn.Module):
        state = {**dict(fn.named_parameters()), **dict(fn.named_buffers())}
        params = {n: t.detach().numpy() for n, t in state.items()}

        def forward(*args):
            w, acts = args[:len(params)], args[len(params):]
            return torch.func.functional_call(fn, dict(zip(params, w)), tuple(acts), strict=True)
    else:
        params, forward = {}, fn
    group = f"module:{name}"
    symbol = f"{sanitize(group)}__forward"
    # The export cache keys on the user's code (the wrapper above is the same for all).
    key = {"group": group, "code": _source(fn), "weights": [(n, list(a.shape), str(a.dtype)) for n, a in params.items()]}
    text = export_function(forward, [*params.values(), *examples], symbol + "_impl", list(params), key)
    return Kernel(symbol, group, params, text)


def _source(fn) -> str:
    target = type(fn) if isinstance(fn, torch.nn.Module) else fn
    try:
        return inspect.getsource(target) + repr(fn)
    except (OSError, TypeError):
        return repr(fn)
