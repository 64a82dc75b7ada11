"""What host operators compute: tokenizers, prompt text, predicates, passages, tools.

One implementation, run by the runtime's sessions (the reference interpreter,
agentc/frontend/reference.py, follows the same semantics).
Tokenizers are the models' own (`encoder.tokenize`, `decoder.tokenize_prompt`,
`decoder.detokenize`): byte-level for the tiny models, WordPiece and BPE with a chat
template for the real ones.
"""

from __future__ import annotations

import re
from concurrent.futures import TimeoutError as FutureTimeout

import numpy as np

from agentc.models import registry, sampling


class RunError(RuntimeError):
    """A request failed; the message names the failing node and its graph.py line."""


class InputError(RunError):
    """A request's inputs are wrong (unknown, missing, not text): the caller's mistake."""


class BuildError(RunError):
    """A build cannot be loaded (damaged, changed since compile, incomplete); the message
    names the file and says what to do."""


class DeviceLost(RunError):
    """A device (its Ray actor or node) is gone mid-request: the session places the plan
    again on what survives and runs the request again (agentc/distributed/recovery.py)."""

    def __init__(self, device: str, message: str):
        super().__init__(message)
        self.device = device


class _Skipped:
    """The one skipped value; pickled by name, so it stays the same object across processes
    (a serving stage's replica returns it)."""

    def __reduce__(self):
        return "SKIPPED"

    def __repr__(self):
        return "SKIPPED"


SKIPPED = _Skipped()  # the value of an operator that did not run (untaken branch, after end-of-turn)
PASS_SKIPPED = frozenset({"select", "detokenize", "stage"})  # host ops that take skipped inputs
# Host ops cheap enough to run on the thread that produced their input (a device worker)
# instead of hopping to the host pool: end-of-turn sits between every two decode steps.
INLINE_HOST_OPS = frozenset({"stop_at_eos", "stop_at_text", "uniform"})


def skipped_inputs(kind: str, args: list) -> bool:
    """Does an operator with these inputs not run? One skipped input skips it, except for
    `select` (one side of a branch is always skipped) and `detokenize` (it ends at the first
    skipped token: generation stopped there)."""
    return kind not in PASS_SKIPPED and any(a is SKIPPED for a in args)


def forward(outs: list, args: list, inputs: list[tuple[str, object]]) -> list[tuple[str, object]]:
    """Place a host op's results: a result that is one of its arguments (end-of-turn passes
    its token on) stays where that input is, on its device, instead of becoming a host value
    the next operator must upload. `inputs`: each argument's (where, stored value)."""
    placed = []
    for out in outs:
        j = next((j for j, a in enumerate(args) if a is out and out is not SKIPPED), None)
        placed.append(inputs[j] if j is not None else ("host", out))
    return placed


def run_host_op(kind: str, attrs: dict, args: list, n_outputs: int,
                passages: dict[str, list[str]], tools: dict, pool, warn=None, models=None, ann=None) -> list:
    """The op's results. `passages`: index name -> its passages; `tools`: name -> callable,
    run on `pool` (a ToolPool); `warn(message)` hears of prompts cut to the model's budget;
    `models`: name -> model with the build's own tokenizer (else the registry's); `ann`:
    index name -> its FAISS index (approximate search)."""
    def model(name: str, decoder: bool = True):
        found = (models or {}).get(name)
        return found if found is not None else registry.decoder(name) if decoder else registry.encoder(name)

    if kind == "tokenize" and n_outputs == 2:
        dec = model(attrs["model"])
        ids, length, dropped = dec.prompt_tokens(args[0])
        if dropped and warn is not None:
            warn(f"prompt of {int(length[0]) + dropped} tokens exceeds the {dec.config.prompt_len}-token "
                 f"budget of model '{attrs['model']}': its first {dropped} tokens were dropped")
        return [ids, length]
    if kind == "tokenize":
        return [model(attrs["model"], decoder=False).tokenize(args[0])]
    if kind == "detokenize":
        end = next((i for i, a in enumerate(args) if a is SKIPPED), len(args))
        return [sampling.before_stop(model(attrs["model"]).detokenize(args[:end]), attrs.get("stop", ()))]
    if kind == "stop_at_text":
        last = args[-1]
        if int(np.asarray(last).ravel()[0]) == attrs["eos"]:
            return [SKIPPED]
        text = model(attrs["model"]).detokenize(args)
        return [SKIPPED if any(s in text for s in attrs["stop"]) else last]
    if kind == "uniform":
        step = attrs["step"]
        return [np.asarray([sampling.uniform(attrs["seed"], step + j) for j in range(attrs.get("count", 1))],
                           np.float32)]
    if kind == "stop_at_eos":
        return [SKIPPED if int(np.asarray(args[0]).ravel()[0]) == attrs["eos"] else args[0]]
    if kind == "format":
        return [attrs["template"].format(*args)]
    if kind == "join":
        return [attrs["separator"].join(args)]
    if kind == "contains":
        return [re.search(attrs["pattern"], args[0]) is not None]
    if kind == "select":
        return [args[1] if args[0] else args[2]]
    if kind == "pair_tokenize":
        texts = passages[attrs["index"]]
        chosen = [texts[int(i)] for i in np.asarray(args[1]).ravel()]
        found = (models or {}).get(attrs["model"])
        return list((found if found is not None else registry.reranker(attrs["model"])).pair_tokenize(args[0], chosen))
    if kind == "ann_search":
        from agentc.frontend import ann_index

        return [ann_index.search(ann[attrs["index"]], args[0], attrs["k"])]
    if kind == "passages":
        texts = passages[attrs["index"]]
        return ["\n".join(texts[int(i)] for i in np.asarray(args[0]).ravel())]
    if kind == "tool":
        return [run_tool(attrs, args, tools, pool)]
    if kind == "stage":  # a serving stage's share, run by its deployment (agentc/serving/stage_plans.py)
        return list(tools[attrs["callee"]](*args))
    raise RunError(f"unknown host op '{kind}'")


def run_tool(attrs: dict, args: list, tools: dict, pool) -> str:
    """Call a graph.py tool on the pool, bounded by its declared timeout; its result must be
    text (anything else would reach the next prompt as its repr)."""
    name = attrs["callee"]
    fn = tools.get(name)
    if fn is None:
        raise RunError(f"tool '{name}' not found in graph.py")
    try:
        out = pool.call(name, fn, args, attrs["timeout_ms"] / 1e3)
    except FutureTimeout:
        raise RunError(f"tool '{name}' exceeded its timeout of {attrs['timeout_ms']} ms") from None
    except RunError:
        raise
    except (Exception, SystemExit) as e:  # noqa: BLE001 - any failure of user tool code
        raise RunError(f"tool '{name}' raised {type(e).__name__}: {e}") from None
    if not isinstance(out, str):
        raise RunError(f"tool '{name}' returned {type(out).__name__}, not text: a tool must return a str")
    return out
