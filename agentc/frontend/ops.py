"""The operations an agent is written with. Each call records one node in the graph being
traced, with the graph.py line that made it, and checks what can be checked right away
(types, shapes, attribute values) so that errors point at the user's line."""

from __future__ import annotations

import functools
import itertools
import re
import sys
from collections.abc import Callable
from pathlib import Path

from agentc.frontend.graph import BOOL, TEXT, AgentError, Graph, Node, SourceLoc, TensorType, Value
from agentc.models import registry

_PKG_DIR = str(Path(__file__).resolve().parents[1])
_stack: list[Graph] = []
_counter = itertools.count()


def caller_loc() -> SourceLoc:
    """The first frame outside agentc: the user's graph.py line. (Walks raw frames:
    inspect.stack() reads the source of every frame, which dominated warm compiles.)"""
    frame = sys._getframe(1)
    while frame is not None:
        filename = frame.f_code.co_filename
        if filename.startswith("<") or not _inside_agentc(filename):
            return SourceLoc(Path(filename).name, frame.f_lineno)
        frame = frame.f_back
    return SourceLoc("<unknown>", 0)


@functools.cache
def _inside_agentc(filename: str) -> bool:
    return str(Path(filename).resolve()).startswith(_PKG_DIR)


def current() -> Graph:
    if not _stack:
        raise AgentError(f"{caller_loc()}: agent operations can only be used inside an @agentc.agent function")
    return _stack[-1]


def _add(op: str, inputs: list, attrs: dict, out_types: list, name: str | None = None,
         after: list[str] | None = None) -> Node:
    g = current()
    loc = caller_loc()
    node = Node(name or f"{op}_{next(_counter)}", op, [], attrs, loc, after=list(after or []))
    for i, v in enumerate(inputs):
        if isinstance(v, str):
            v = _const_text(v, loc)
        if not isinstance(v, Value):
            raise AgentError(f"{loc}: {op}: argument {i} must be an agent value or a string, got {type(v).__name__}")
        node.inputs.append(v)
    node.results = [Value(node, i, t) for i, t in enumerate(out_types)]
    g.nodes.append(node)
    return node


def _const_text(s: str, loc: SourceLoc) -> Value:
    g = current()
    node = Node(f"text_{next(_counter)}", "format", [], {"template": s.replace("{", "{{").replace("}", "}}")}, loc)
    node.results = [Value(node, 0, TEXT)]
    g.nodes.append(node)
    return node.results[0]


def _expect(node_op: str, v: Value, want, loc_hint: str = "") -> None:
    if isinstance(v, Value) and v.type != want and not (want == "tensor" and isinstance(v.type, TensorType)):
        raise AgentError(f"{caller_loc()}: {node_op}: expected {want}, got {v.type} from {v.describe()}")


def tokenize(text, model: str = "tiny-encoder", name: str | None = None) -> Value:
    """Text -> padded token ids for an encoder model."""
    enc = registry.encoder(model)
    return _add("tokenize", [text], {"model": model},
                [TensorType((1, enc.config.max_len), "i32")], name).results[0]


def embed(ids: Value, model: str = "tiny-encoder", name: str | None = None) -> Value:
    """Token ids -> L2-normalised sentence embedding (1, D)."""
    enc = registry.encoder(model)
    want = TensorType((1, enc.config.max_len), "i32")
    if not isinstance(ids, Value) or ids.type != want:
        got = ids.type if isinstance(ids, Value) else type(ids).__name__
        raise AgentError(f"{caller_loc()}: embed: expected token ids {want.mlir()} for model '{model}', got {got}")
    return _add("embed", [ids], {"model": model}, [TensorType((1, enc.config.dim), "f32")], name).results[0]


def vector_search(query: Value, index, k: int = 3, name: str | None = None) -> Value:
    """Embedding -> indices (1, k) of the k most similar passages in `index`."""
    from agentc.frontend.index import VectorIndex

    if not isinstance(index, VectorIndex):
        raise AgentError(f"{caller_loc()}: vector_search: index must be an agentc.VectorIndex")
    dim = registry.encoder(index.encoder).config.dim
    if not isinstance(query, Value) or not isinstance(query.type, TensorType) or query.type.shape != (1, dim):
        got = query.type.mlir() if isinstance(query, Value) and isinstance(query.type, TensorType) else getattr(query, "type", query)
        raise AgentError(f"{caller_loc()}: vector_search: shape mismatch: index '{index.name}' holds "
                         f"{dim}-dim embeddings, query is {got}")
    if not 1 <= k <= len(index.passages):
        raise AgentError(f"{caller_loc()}: vector_search: k must be in 1..{len(index.passages)}, got {k}")
    current().indexes[index.name] = index
    return _add("vector_search", [query], {"index": index.name, "k": k}, [TensorType((1, k), "i32")], name).results[0]


def passages(indices: Value, index, name: str | None = None) -> Value:
    """Passage indices -> their text, one per line."""
    current().indexes[index.name] = index
    return _add("passages", [indices], {"index": index.name}, [TEXT], name).results[0]


GRANULARITIES = ("layer", "step")


def llm(prompt, model: str = "tiny-lm", max_tokens: int = 16, name: str | None = None,
        granularity: str | None = None, prompt_len: int | None = None,
        cache_len: int | None = None) -> Value:
    """Prompt -> generated text (greedy), stopping at end-of-turn. `granularity` (layered
    models only): "layer" makes every layer of prefill and of each decode step its own
    operator, so layers and steps can be placed apart; "step" makes one operator per
    prefill and per decode step (far fewer operators, far fewer calls). Unset, the compiler
    picks "step" when the cluster has one device (nothing to split) and "layer" otherwise. `prompt_len` / `cache_len` (layered models only)
    set the static prompt budget P (longer prompts lose the start of the message) and KV
    cache length S; prefill costs grow with P, decode traffic with S."""
    if prompt_len is not None or cache_len is not None:
        try:
            model = registry.variant_name(model, prompt_len, cache_len)
            registry.decoder(model)
        except (registry.UnknownModel, ValueError) as e:
            raise AgentError(f"{caller_loc()}: llm: {e.args[0] if e.args else e}") from None
    dec = registry.decoder(model)
    room = dec.config.cache_len - dec.config.prompt_len
    if not 1 <= max_tokens <= room:
        raise AgentError(f"{caller_loc()}: llm: max_tokens must be in 1..{room} for model '{model}', got {max_tokens}")
    if granularity is not None and granularity not in GRANULARITIES:
        raise AgentError(f"{caller_loc()}: llm: granularity must be one of {', '.join(GRANULARITIES)}, "
                         f"got {granularity!r}")
    _expect("llm", prompt, TEXT)
    attrs = {"model": model, "max_tokens": max_tokens}
    if granularity is not None:
        attrs["granularity"] = granularity
    return _add("llm", [prompt], attrs, [TEXT], name).results[0]


def tool(fn: Callable, *args, latency_ms: int = 10, timeout_ms: int = 1000, name: str | None = None,
         after: list[str] | None = None) -> Value:
    """Run a Python callable on the host: text arguments in, text out."""
    if not callable(fn):
        raise AgentError(f"{caller_loc()}: tool: expected a callable, got {type(fn).__name__}")
    if timeout_ms <= 0 or latency_ms < 0:
        raise AgentError(f"{caller_loc()}: tool: latency_ms must be >= 0 and timeout_ms > 0")
    callee = fn.__name__
    known = current().tools.get(callee)
    if known is not None and known is not fn:
        raise AgentError(f"{caller_loc()}: tool: two different tools are named '{callee}'")
    current().tools[callee] = fn
    return _add("tool", list(args), {"callee": callee, "latency_ms": latency_ms, "timeout_ms": timeout_ms},
                [TEXT], name or callee, after).results[0]


def format(template: str, *args, name: str | None = None, **kwargs) -> Value:
    """Prompt formatting: positional {0} or named {key} placeholders."""
    values, mapping = list(args), {}
    for key, v in kwargs.items():
        mapping[key] = len(values)
        values.append(v)
    try:
        norm = re.sub(r"\{(\w+)\}", lambda m: "{" + str(mapping.get(m.group(1), m.group(1))) + "}", template)
        norm.format(*["" for _ in values])
    except (IndexError, KeyError, ValueError) as e:
        raise AgentError(f"{caller_loc()}: format: template does not match its arguments ({e})") from None
    return _add("format", values, {"template": norm}, [TEXT], name).results[0]


def join(values: list, separator: str = "\n", name: str | None = None) -> Value:
    """Reduce a fan-out: join texts with a separator."""
    return _add("join", list(values), {"separator": separator}, [TEXT], name).results[0]


def contains(text: Value, pattern: str, name: str | None = None) -> Value:
    """A host predicate: does `text` match the regular expression `pattern`?"""
    try:
        re.compile(pattern)
    except re.error as e:
        raise AgentError(f"{caller_loc()}: contains: bad pattern {pattern!r}: {e}") from None
    return _add("contains", [text], {"pattern": pattern}, [BOOL], name).results[0]


def cond(pred: Value, then_fn: Callable[[], Value], else_fn: Callable[[], Value], name: str | None = None) -> Value:
    """A bounded data-dependent branch: only the taken side runs. Each side is a function
    of no arguments returning one text value."""
    if not isinstance(pred, Value) or pred.type != BOOL:
        raise AgentError(f"{caller_loc()}: cond: the predicate must come from agentc.contains(...)")
    outer = current()
    loc = caller_loc()
    branches = []
    for label, fn in (("then", then_fn), ("else", else_fn)):
        sub = Graph(f"{outer.name}_{label}", loc=loc, indexes=outer.indexes, tools=outer.tools)
        _stack.append(sub)
        try:
            out = fn()
        finally:
            _stack.pop()
        if isinstance(out, str):
            _stack.append(sub)
            try:
                out = _const_text(out, loc)
            finally:
                _stack.pop()
        if not isinstance(out, Value) or out.type != TEXT:
            raise AgentError(f"{loc}: cond: the {label} branch must return text")
        sub.outputs = [out]
        branches.append(sub)
    node = _add("if", [pred], {}, [TEXT], name)
    node.branches = (branches[0], branches[1])
    return node.results[0]


def fanout(fn: Callable[[object], Value], items: list, reduce: Callable[[list], Value] | None = None) -> Value | list:
    """A parallel fan-out: fn over each item, then `reduce` (default: join with newlines)."""
    outs = [fn(item) for item in items]
    return (reduce or join)(outs)
