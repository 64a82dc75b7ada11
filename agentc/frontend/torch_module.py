"""`agentc.module`: any PyTorch module (or function) as an operator of the agent.

The module runs on tensor values of the graph. Its parameters and buffers become its
weights (resident on the device it is placed on), and it is exported once through
`torch.export` and torch-mlir's FX importer with the inputs' static shapes, like every
model operator; its outputs' shapes are found by running it once on zeros here.
"""

from __future__ import annotations

from agentc.frontend.graph import AgentError, TensorType, Value
from agentc.frontend.ops import _add, current
from agentc.frontend.source import caller_loc

_DTYPES = {"f32": "float32", "i32": "int32"}


def module(fn, *inputs: Value, name: str | None = None):
    """`fn(*inputs)` for a `torch.nn.Module` or a function of tensors; returns one value, or
    a tuple for a module that returns several tensors."""
    import torch

    loc = caller_loc()
    if not callable(fn):
        raise AgentError(f"{loc}: module: expected a torch.nn.Module or a function, got {type(fn).__name__}")
    if not 1 <= len(inputs) <= 4:
        raise AgentError(f"{loc}: module: takes one to four tensor values, got {len(inputs)}")
    for i, v in enumerate(inputs):
        if not isinstance(v, Value) or not isinstance(v.type, TensorType):
            got = v.type if isinstance(v, Value) else type(v).__name__
            raise AgentError(f"{loc}: module: input {i} must be a tensor value (e.g. an embedding), got {got}")
    if isinstance(fn, torch.nn.Module):
        fn.eval()
    examples = [torch.zeros(v.type.shape, dtype=getattr(torch, _DTYPES[v.type.dtype])) for v in inputs]
    try:
        with torch.no_grad():
            out = fn(*examples)
    except Exception as e:  # noqa: BLE001 - the user's module failed on its example inputs
        raise AgentError(f"{loc}: module: calling it on zeros of the inputs' shapes raised "
                         f"{type(e).__name__}: {e}") from None
    outs = list(out) if isinstance(out, (tuple, list)) else [out]
    if len(outs) > 4:
        raise AgentError(f"{loc}: module: returns {len(outs)} tensors; at most four")
    types = []
    for i, t in enumerate(outs):
        dtype = next((k for k, v in _DTYPES.items() if isinstance(t, torch.Tensor) and t.dtype == getattr(torch, v)),
                     None)
        if dtype is None:
            raise AgentError(f"{loc}: module: output {i} must be a float32 or int32 tensor, got "
                             f"{getattr(t, 'dtype', type(t).__name__)}")
        types.append(TensorType(tuple(t.shape), dtype))
    g = current()
    callee = name or type(fn).__name__ if isinstance(fn, torch.nn.Module) else name or fn.__name__
    known = g.modules.get(callee)
    if known is not None and known is not fn:
        raise AgentError(f"{loc}: module: two different modules are named '{callee}'; give one of them name=")
    node = _add("module", list(inputs), {"callee": callee}, types, name)
    g.modules[callee] = fn
    return node.results[0] if len(types) == 1 else tuple(node.results)
