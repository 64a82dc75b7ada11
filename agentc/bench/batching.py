"""`agentc bench batching`: does serving concurrent requests as one batched call pay, per
stage kind?

For B = 1, 2, 4, 8, 16 requests at once: one MiniLM-L6 block (the encoder stage's
operator, 128 tokens), the vector search's similarity over a 100,000 x 384 index and its
top-3, and the LLM stage's two operators on SmolLM2-135M's architecture (random weights, the
RAG agent's 192-token prompt and 256-position cache): one decode step of B sequences, each
at its own position (agentc.models.batched), and the prefill of B prompts (B <= 4: each call
is seconds of compute here). Each operator is exported at batch B from the model's own
PyTorch code and compiled with the device kind's flags, inputs uploaded once, timed
interleaved (agentc/bench/timing.py). The anchor is B = 1 measured in the same run:
`speedup_B` = B x time(1) / time(B), the requests per second one replica gains from batching
B of them.

Here it measures this machine's CPU. `--target cuda --artifacts DIR` compiles the same
operators for a GPU instead (with the runtime's own kernel forms), for
`python -m agentc.bench.batching_run DIR` to measure where the GPU is.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import NamedTuple

import numpy as np

BATCHES = (1, 2, 4, 8, 16)
INDEX_N, DIM, SEQ, K = 100_000, 384, 128, 3
LLM = "smollm2-135m-random@192x256"
LIMITS = {"llm_prefill": 4}  # the largest batch measured, where not the largest of BATCHES


class Kernel(NamedTuple):
    """One operator at one batch size: its module text and function, example arguments, and
    how many of them (first) are the weights of `weights` (a model or index, shared across
    batch sizes)."""

    text: str
    function: str
    args: list
    n_weights: int
    weights: str


def _say(msg: str) -> None:
    print(f"[bench batching] {msg}", file=sys.stderr, flush=True)


def _in_form(model, runtime: str):
    """The model as it is exported for `runtime` (agentc.models.forms)."""
    from agentc.models.forms import in_form

    return in_form(model, getattr(model, "RUNTIME_FORMS", {}).get(runtime, {}))


@functools.cache
def _index(n: int) -> np.ndarray:
    """The vector search's index, made once for every batch size (its values do not matter
    to the timing; one array is uploaded once)."""
    return np.random.default_rng(2).standard_normal((n, DIM)).astype(np.float32)


def _llm_kernels(batch: int, runtime: str) -> dict[str, Kernel]:
    from agentc.models import batched, registry
    from agentc.models.export import export_function

    llm = _in_form(registry.decoder(LLM), runtime)
    c, weights = llm.config, llm.all_group
    names, key = list(weights), {"bench": "batch", "model": LLM, "forms": llm.RUNTIME_FORMS.get(runtime, {})}
    rng = np.random.default_rng(1)
    cache = rng.standard_normal(batched.cache_shape(llm, batch)).astype(np.float32)
    pos = rng.integers(c.prompt_len, c.cache_len - 1, batch).astype(np.int32)
    dec = [*weights.values(), rng.integers(3, c.vocab, batch).astype(np.int32), pos, *[cache] * (2 * c.layers)]
    out = {"llm_decode_step": Kernel(export_function(lambda *a: batched.decode(llm, *a), dec, f"decode_b{batch}",
                                                     names, key), f"decode_b{batch}", dec, len(names), "llm")}
    if batch <= LIMITS["llm_prefill"]:
        pre = [*weights.values(), rng.integers(3, c.vocab, (batch, c.prompt_len)).astype(np.int32),
               rng.integers(c.prompt_len // 2, c.prompt_len + 1, batch).astype(np.int32)]
        out["llm_prefill"] = Kernel(export_function(lambda *a: batched.prefill(llm, *a), pre, f"prefill_b{batch}",
                                                    names, key), f"prefill_b{batch}", pre, len(names), "llm")
    return out


def _kernels(batch: int, quick: bool, runtime: str = "cpu") -> dict[str, Kernel]:
    """The operators at one batch size, by name."""
    from agentc.models import registry
    from agentc.models.export import export_function
    from agentc.models.kernels import similarity, top_k

    enc = _in_form(registry.encoder("minilm-l6-random"), runtime)
    c = enc.config
    layer = enc.groups[f"{c.name}/l0"]
    rng = np.random.default_rng(0)
    ids = rng.integers(1000, 2000, (batch, SEQ)).astype(np.int32)
    x = rng.standard_normal((batch, SEQ, c.dim)).astype(np.float32)
    n = INDEX_N // 10 if quick else INDEX_N
    corpus = _index(n)
    q = rng.standard_normal((batch, DIM)).astype(np.float32)
    scores = (q @ corpus.T).astype(np.float32)

    def topk(s):
        return top_k(s, K)

    out = {}
    block_args = [*layer.values(), x, ids]
    forms = {"bench": "batch", "forms": enc.RUNTIME_FORMS.get(runtime, {})}
    out["minilm_block"] = Kernel(export_function(enc.block, block_args, f"block_b{batch}", list(layer), forms),
                                 f"block_b{batch}", block_args, len(layer), "minilm")
    out["similarity"] = Kernel(export_function(similarity, [corpus, q], f"sim_b{batch}", ["c"],
                                               {"bench": "batch", "n": n}), f"sim_b{batch}", [corpus, q], 1, "index")
    out["top3"] = Kernel(export_function(topk, [scores], f"top_b{batch}", [], {"bench": "batch", "n": n}),
                         f"top_b{batch}", [scores], 0, "")
    return out | _llm_kernels(batch, runtime)


def run(args, out: Path):
    from agentc.bench.batching_run import measure, plot, tabulate
    from agentc.bench.timing import Device
    from agentc.build.iree_compile import compile_module
    from agentc.devices import KINDS

    quick = bool(getattr(args, "quick", False))
    kind = KINDS["cpu"]
    entries = []
    for b in BATCHES:
        for name, k in _kernels(b, quick).items():
            _say(f"{name} at batch {b}: compiling")
            entries.append((name, b, compile_module(k.text, kind.target, kind.compile_flags, "cpu")[0], k.function,
                            k.args))
    dev = Device(kind.driver, kind.staged_readback)
    try:
        labels, stats = measure(dev, entries, 0.5 if quick else 2.0, _say)
    finally:
        dev.close()
    results, summary = tabulate(labels, stats, _say)
    plot(results, out / "batching.png")
    return _params(quick, "cpu") | {"device": "cpu (this machine)", "quick": quick}, results, summary


def _params(quick: bool, target: str) -> dict:
    from agentc.devices import KINDS

    return {"batches": list(BATCHES), "index": [INDEX_N // 10 if quick else INDEX_N, DIM], "seq": SEQ, "llm": LLM,
            "target": KINDS[target].target, "flags": list(KINDS[target].compile_flags)}


def compile_artifacts(target: str, art: Path, quick: bool = False) -> Path:
    """The same operators compiled for `target`, written to `art` with a manifest that
    agentc/bench/batching_run.py measures on the machine that has the device."""
    from agentc.devices import KINDS

    made = ((name, b, k) for b in BATCHES for name, k in _kernels(b, quick, KINDS[target].name).items())
    return write_artifacts(made, target, art, _params(quick, target))


def write_artifacts(made, target: str, art: Path, params: dict) -> Path:
    """(name, batch, Kernel) triples compiled for `target` into `art`, with the manifest
    batching_run.py reads. Integer inputs are recorded; weights are named (shared across
    batch sizes), other floats are random there."""
    import json

    from agentc.build.iree_compile import compile_module
    from agentc.devices import KINDS

    kind = KINDS[target]
    art.mkdir(parents=True, exist_ok=True)
    kernels = []
    for name, b, k in made:
        _say(f"{name} at batch {b}: compiling for {target}")
        file = f"{name}_b{b}.vmfb"
        (art / file).write_bytes(compile_module(k.text, kind.target, kind.compile_flags, kind.name)[0])
        inputs = [{"shape": list(a.shape), "dtype": str(a.dtype)} | (
            {"weight": f"{k.weights}.{i}"} if i < k.n_weights else
            {"values": a.ravel().tolist()} if a.dtype.kind in "iu" else {}) for i, a in enumerate(k.args)]
        kernels.append({"name": name, "batch": b, "file": file, "function": k.function, "inputs": inputs})
    manifest = params | {"driver": kind.driver, "staged_readback": kind.staged_readback, "kernels": kernels}
    (art / "manifest.json").write_text(json.dumps(manifest) + "\n")
    _say(f"{len(kernels)} kernels in {art}; measure them there: python -m agentc.bench.batching_run {art} --out OUT")
    return art
