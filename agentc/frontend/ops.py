"""The operations an agent is written with. Each call records one node in the graph being
traced, with the graph.py line that made it, and checks what can be checked right away
(types, shapes, attribute values) so that errors point at the user's line."""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Callable

from agentc.frontend.graph import BOOL, TEXT, AgentError, Graph, Node, SourceLoc, TensorType, Value
from agentc.frontend.source import caller_loc
from agentc.models import registry

_stack: list[Graph] = []
_counter = itertools.count()


class TracedValue(Value):
    """A value while tracing: `+` on text builds a format node (`prompt + query`)."""

    def __add__(self, other):
        return format("{0}{1}", self, other)

    def __radd__(self, other):
        return format("{0}{1}", other, self)


def current() -> Graph:
    if not _stack:
        raise AgentError(f"{caller_loc()}: agent operations can only be used inside an @agentc.agent function")
    return _stack[-1]


NODE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")


def _node_name(g: Graph, op: str, name, loc: SourceLoc) -> str:
    """An explicit `name=` (checked: it names an MLIR value and a plan operator) or a fresh
    one; unique within the agent, branches included."""
    if name is None:
        name = f"{op}_{next(_counter)}"
        while name in g.node_names:
            name = f"{op}_{next(_counter)}"
    elif not isinstance(name, str) or not NODE_NAME.fullmatch(name):
        raise AgentError(f"{loc}: {op}: name={name!r}: a node name is letters, digits, '_', '.' and '-', "
                         "starting with a letter or '_'")
    elif name in g.node_names:
        raise AgentError(f"{loc}: {op}: name '{name}' is already the name of the node at {g.node_names[name]}; "
                         "node names must be unique")
    if len(g.node_names) >= g.max_nodes:
        raise AgentError(f"{loc}: {op}: the agent traced more than {g.max_nodes} nodes (a loop that does "
                         "not end?); raise the limit with --max-nodes (max_nodes= in Python)")
    g.node_names[name] = loc
    return name


def _add(op: str, inputs: list, attrs: dict, out_types: list, name: str | None = None,
         after: list[str] | None = None) -> Node:
    g = current()
    loc = caller_loc()
    if after is not None and (not isinstance(after, (list, tuple)) or not all(isinstance(a, str) for a in after)):
        raise AgentError(f"{loc}: {op}: after= must be a list of node names, got {after!r}")
    node = Node(_node_name(g, op, name, loc), op, [], attrs, loc, after=list(after or []))
    for i, v in enumerate(inputs):
        if isinstance(v, str):
            v = _const_text(v, loc)
        if not isinstance(v, Value):
            raise AgentError(f"{loc}: {op}: argument {i} must be an agent value or a string, got {type(v).__name__}")
        node.inputs.append(v)
    node.results = [TracedValue(node, i, t) for i, t in enumerate(out_types)]
    g.nodes.append(node)
    return node


def _const_text(s: str, loc: SourceLoc) -> Value:
    g = current()
    node = Node(_node_name(g, "text", None, loc), "format", [], {"template": s.replace("{", "{{").replace("}", "}}")}, loc)
    node.results = [TracedValue(node, 0, TEXT)]
    g.nodes.append(node)
    return node.results[0]


def _whole(op: str, what: str, v, lo: int, hi: int | None = None) -> int:
    """An integer argument in [lo, hi], or an error naming the op, the argument and the line."""
    if isinstance(v, bool) or not isinstance(v, int):
        raise AgentError(f"{caller_loc()}: {op}: {what} must be a whole number, got {type(v).__name__} {v!r}")
    if v < lo or (hi is not None and v > hi):
        span = f"in {lo}..{hi}" if hi is not None else f">= {lo}"
        raise AgentError(f"{caller_loc()}: {op}: {what} must be {span}, got {v}")
    return v


def _text_arg(op: str, what: str, v) -> str:
    if not isinstance(v, str):
        raise AgentError(f"{caller_loc()}: {op}: {what} must be a str, got {type(v).__name__}")
    return v


def _expect(node_op: str, v: Value, want, loc_hint: str = "") -> None:
    if isinstance(v, Value) and v.type != want and not (want == "tensor" and isinstance(v.type, TensorType)):
        raise AgentError(f"{caller_loc()}: {node_op}: expected {want}, got {v.type} from {v.describe()}")


def _encoder(op: str, model):
    try:
        return registry.encoder(_text_arg(op, "model", model))
    except registry.UnknownModel as e:
        raise AgentError(f"{caller_loc()}: {op}: {e.args[0] if e.args else e}") from None


def tokenize(text, model: str = "tiny-encoder", name: str | None = None) -> Value:
    """Text -> padded token ids for an encoder model."""
    enc = _encoder("tokenize", model)
    return _add("tokenize", [text], {"model": model},
                [TensorType((1, enc.config.max_len), "i32")], name).results[0]


def embed(ids: Value, model: str = "tiny-encoder", name: str | None = None) -> Value:
    """Token ids -> L2-normalised sentence embedding (1, D)."""
    enc = _encoder("embed", model)
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
    _whole("vector_search", "k", k, 1, len(index.passages))
    current().indexes[index.name] = index
    return _add("vector_search", [query], {"index": index.name, "k": k}, [TensorType((1, k), "i32")], name).results[0]


def passages(indices: Value, index, name: str | None = None) -> Value:
    """Passage indices -> their text, one per line."""
    current().indexes[index.name] = index
    return _add("passages", [indices], {"index": index.name}, [TEXT], name).results[0]


def rerank(query, indices: Value, index, model: str, name: str | None = None) -> Value:
    """(query text, passage indices (1, k) of `index`, e.g. a vector_search's) -> the same
    indices ordered by the cross-encoder `model`'s relevance score for (query, passage),
    best first."""
    from agentc.frontend.index import VectorIndex

    if not isinstance(index, VectorIndex):
        raise AgentError(f"{caller_loc()}: rerank: index must be an agentc.VectorIndex")
    try:
        registry.reranker(_text_arg("rerank", "model", model))
    except registry.UnknownModel as e:
        raise AgentError(f"{caller_loc()}: rerank: {e.args[0] if e.args else e}") from None
    _expect("rerank", query, TEXT)
    t = indices.type if isinstance(indices, Value) else None
    if not isinstance(t, TensorType) or t.dtype != "i32" or len(t.shape) != 2 or t.shape[0] != 1:
        raise AgentError(f"{caller_loc()}: rerank: indices must be passage indices (1, k) i32, e.g. a "
                         f"vector_search's, got {t.mlir() if isinstance(t, TensorType) else t or type(indices).__name__}")
    current().indexes[index.name] = index
    return _add("rerank", [query, indices], {"model": model, "index": index.name}, [t], name).results[0]


GRANULARITIES = ("layer", "step")


def llm(prompt, model: str = "tiny-lm", max_tokens: int = 16, name: str | None = None,
        granularity: str | None = None, prompt_len: int | None = None,
        cache_len: int | None = None, temperature: float = 0.0, top_k: int = 0, top_p: float = 1.0,
        seed: int | None = None, stop: str | list[str] | None = None, decode_chunk: int | None = None) -> Value:
    """Prompt -> generated text (greedy), stopping at end-of-turn. `granularity` (layered
    models only): "layer" makes every layer of prefill and of each decode step its own
    operator, so layers and steps can be placed apart; "step" makes one operator per
    prefill and per decode step (far fewer operators, far fewer calls). Unset, the compiler
    picks "step" when the cluster has one device (nothing to split) and "layer" otherwise. `prompt_len` / `cache_len` (layered models only)
    set the static prompt budget P (longer prompts lose the start of the message) and KV
    cache length S; prefill costs grow with P, decode traffic with S.

    Sampling: temperature 0 (the default) is greedy; above 0 each token is drawn from
    softmax(logits / temperature), restricted to the `top_k` most likely tokens (0: all)
    and then to the `top_p` nucleus, on the device. With a `seed` the draws, and so the
    text, repeat from request to request; without one each request draws afresh. `stop`
    (a string or several) ends generation where the text first contains one of them; the
    text returned ends before it.

    `decode_chunk` (step granularity): decode steps per device call. A chunk runs its
    steps, token choices and end-of-turn on the device and returns to the host once; a
    chunk that ends generation early computes its remaining steps for nothing. Unset, the
    compiler picks it from the step's predicted time and the device's round trip. Where
    the LLM is split per layer (granularity "layer", or unset on several devices), tokens
    are generated one call chain per step and `decode_chunk` does not apply."""
    _text_arg("llm", "model", model)
    for what, v in (("prompt_len", prompt_len), ("cache_len", cache_len)):
        if v is not None:
            _whole("llm", what, v, 1)
    if prompt_len is not None or cache_len is not None:
        try:
            model = registry.variant_name(model, prompt_len, cache_len)
            registry.decoder(model)
        except (registry.UnknownModel, ValueError) as e:
            raise AgentError(f"{caller_loc()}: llm: {e.args[0] if e.args else e}") from None
    try:
        dec = registry.decoder(model)
    except registry.UnknownModel as e:
        raise AgentError(f"{caller_loc()}: llm: {e.args[0] if e.args else e}") from None
    room = dec.config.cache_len - dec.config.prompt_len
    _whole("llm", f"max_tokens (model '{model}')", max_tokens, 1, room)
    if granularity is not None and granularity not in GRANULARITIES:
        raise AgentError(f"{caller_loc()}: llm: granularity must be one of {', '.join(GRANULARITIES)}, "
                         f"got {granularity!r}")
    _expect("llm", prompt, TEXT)
    attrs = {"model": model, "max_tokens": max_tokens}
    if granularity is not None:
        attrs["granularity"] = granularity
    if decode_chunk is not None:
        attrs["decode_chunk"] = _whole("llm", "decode_chunk", decode_chunk, 1, max_tokens)
        if decode_chunk > 1 and granularity == "layer":
            raise AgentError(f"{caller_loc()}: llm: decode_chunk needs granularity 'step' (a chunk loops over the "
                             f"whole decode step), got granularity 'layer'")
    attrs.update(_sampling(temperature, top_k, top_p, seed, stop, dec.config.vocab))
    return _add("llm", [prompt], attrs, [TEXT], name).results[0]


def _sampling(temperature, top_k, top_p, seed, stop, vocab: int) -> dict:
    """The llm node's sampling attributes, each checked (errors name the argument)."""
    def number(what, v, ok, rule):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not ok(v):
            raise AgentError(f"{caller_loc()}: llm: {what} must be {rule}, got {v!r}")
        return float(v)

    out = {}
    t = number("temperature", temperature, lambda v: 0 <= v < float("inf"), "a number >= 0")
    if t > 0:
        out["temperature"] = t
        out["top_k"] = _whole("llm", "top_k", top_k, 0, vocab)
        out["top_p"] = number("top_p", top_p, lambda v: 0 < v <= 1, "a number in (0, 1]")
        if seed is not None:
            _whole("llm", "seed", seed, 0, 2**63 - 1)
        out["seed"] = -1 if seed is None else seed
    elif (top_k, top_p, seed) != (0, 1.0, None):
        raise AgentError(f"{caller_loc()}: llm: top_k, top_p and seed apply to sampling: give a temperature > 0")
    if stop is not None:
        stops = [stop] if isinstance(stop, str) else stop
        if not isinstance(stops, (list, tuple)) or not stops or not all(isinstance(x, str) and x for x in stops):
            raise AgentError(f"{caller_loc()}: llm: stop must be a non-empty string or a list of them, got {stop!r}")
        out["stop"] = list(stops)
    return out


def tool(fn: Callable, *args, latency_ms: int = 10, timeout_ms: int = 1000, name: str | None = None,
         after: list[str] | None = None) -> Value:
    """Run a Python callable on the host: text arguments in, text out (a str; anything else
    fails the request). The tool's name is `name=`, else the callable's `__name__` (a
    functools.partial's function's, "lambda" for a lambda); it names the node too."""
    if not callable(fn):
        raise AgentError(f"{caller_loc()}: tool: expected a callable, got {type(fn).__name__}")
    for what, v, lo in (("latency_ms", latency_ms, 0), ("timeout_ms", timeout_ms, 1)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not v >= lo or v == float("inf"):
            raise AgentError(f"{caller_loc()}: tool: {what} must be a number >= {lo}, got {v!r}")
    callee = name if name is not None else tool_name(fn)
    known = current().tools.get(callee)
    if known is not None and known is not fn:
        raise AgentError(f"{caller_loc()}: tool: two different tools are named '{callee}'; "
                         "give one of them name=")
    node_name = name
    if name is None:  # the same tool called again: callee_2, callee_3, ...
        node_name, k = callee, 2
        while node_name in current().node_names:
            node_name, k = f"{callee}_{k}", k + 1
    node = _add("tool", list(args), {"callee": callee, "latency_ms": latency_ms, "timeout_ms": timeout_ms},
                [TEXT], node_name, after)
    current().tools[callee] = fn
    return node.results[0]


def tool_name(fn) -> str:
    """A callable's name as a node name: `__name__`, through functools.partial, with
    characters a node name cannot hold replaced ("<lambda>" -> "lambda")."""
    while isinstance(fn, functools.partial):
        fn = fn.func
    raw = getattr(fn, "__name__", None) or type(fn).__name__
    name = re.sub(r"[^A-Za-z0-9_.-]", "", raw) or "tool"
    return name if NODE_NAME.fullmatch(name) else f"tool_{name}"


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
        sub = Graph(f"{outer.name}_{label}", loc=loc, indexes=outer.indexes, tools=outer.tools,
                    node_names=outer.node_names, max_nodes=outer.max_nodes)
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
