"""Generation on the device, in chunks: what does running N decode steps (step, greedy
sample, end-of-turn applied on the device, token append) as one call save per token,
against a call per step? (issue 23, item 1)

`decode_chunk` at N = 1, 4, 8, 16 is N steps of SmolLM2-135M's architecture (random
weights, the generic import, prompt budget 192, cache 256) unrolled in one exported
function: each step's token is the greedy sample, or end-of-turn again once one was
sampled (then the position stops moving), so a chunk needs no host decision inside it and
the host reads one (N,) array per chunk: 1/N syncs per token. Beside it, as they run today
per token: `decode_step` (one call) and `sample` (another). Timed with batching_run's
interleaved timer, inputs uploaded once, readbacks not included; `speedup` at N is
N x time(N=1) / time(N), the per-token gain of the chunk over a chunk of one.

    python experiments/decode-loop/chunks.py                       # this CPU, measured here
    python experiments/decode-loop/chunks.py --target cuda --artifacts .device/chunks
    python -m agentc.bench.batching_run .device/chunks --out OUT   # there
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

LLM = "smollm2-135m-random@192x256"
CHUNKS = (1, 4, 8, 16)


def stacked_decode(model, *args):
    """The model's step with its caches stacked over the layers, as this experiment was
    written (the model takes and returns one cache per layer)."""
    import torch

    *rest, k, v = args
    out = model.decode(*rest, *k.unbind(0), *v.unbind(0))
    layers = k.shape[0]
    return out[0], torch.stack(out[1:1 + layers]), torch.stack(out[1 + layers:-1]), out[-1]


def chunk_fn(model, n: int):
    """(weights..., token (1,), pos (1,), K, V, done (1,) int32) -> tokens (n,), K, V, pos, done."""
    import torch

    from agentc.models.sampling import greedy

    eos = model.config.eos
    n_w = len(model.all_group)

    def decode_chunk(*args):
        w, (token, pos, k, v, done) = args[:n_w], args[n_w:]
        tokens = []
        for _ in range(n):
            logits, k, v, nxt = stacked_decode(model, *w, token, pos, k, v)
            t = greedy(logits)
            finished = done > 0
            token = torch.where(finished, torch.full_like(t, eos), t)
            pos = torch.where(finished, pos, nxt)
            done = (finished | (token == eos)).to(torch.int32)
            tokens.append(token)
        return torch.cat(tokens), k, v, pos, done

    return decode_chunk


def kernels(model, chunks):
    """(name, N, Kernel) for the chunks and the per-token anchors."""
    from agentc.bench.batching import Kernel
    from agentc.models.export import export_function
    from agentc.models.sampling import greedy

    c, weights = model.config, model.all_group
    names, n_w = list(weights), len(weights)
    rng = np.random.default_rng(1)
    cache = (rng.standard_normal((c.layers, 1, c.kv_heads, c.cache_len, c.head_dim)) * 0.1).astype(np.float32)
    token, pos = np.array([17], np.int32), np.array([c.prompt_len], np.int32)
    step = [*weights.values(), token, pos, cache, cache.copy()]
    logits = rng.standard_normal((1, c.vocab)).astype(np.float32)
    key = {"experiment": "decode-loop", "model": LLM}
    yield "decode_step", 1, Kernel(export_function(lambda *a: stacked_decode(model, *a), step, "decode_step", names, key), "decode_step",
                                   step, n_w, "llm")
    yield "sample", 1, Kernel(export_function(greedy, [logits], "sample", [], key), "sample", [logits], 0, "")
    for n in chunks:
        args = [*step, np.array([0], np.int32)]
        t0 = time.perf_counter()
        text = export_function(chunk_fn(model, n), args, f"decode_chunk{n}", names, dict(key, chunk=n))
        print(f"[chunks] decode_chunk N={n}: exported in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
        yield "decode_chunk", n, Kernel(text, f"decode_chunk{n}", args, n_w, "llm")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--target", default="cpu")
    p.add_argument("--artifacts", type=Path, help="compile into DIR for batching_run on the device (not cpu)")
    p.add_argument("--chunks", default=",".join(map(str, CHUNKS)))
    p.add_argument("--budget", type=float, default=3.0, help="seconds of timing per kernel (cpu)")
    args = p.parse_args()
    from agentc.bench import batching, batching_run
    from agentc.models import registry

    model = registry.decoder(LLM)
    made = list(kernels(model, [int(n) for n in args.chunks.split(",")]))
    params = {"llm": LLM, "experiment": "decode-loop chunks"}
    if args.artifacts:
        batching.write_artifacts(made, args.target, args.artifacts, params)
        return
    import os

    from agentc.bench.timing import Device
    from agentc.build.iree_compile import compile_module
    from agentc.devices import KINDS

    kind = KINDS["cpu"]
    entries = []
    for name, n, k in made:
        t0 = time.perf_counter()
        vmfb = compile_module(k.text, kind.target, kind.compile_flags, "cpu")[0]
        print(f"[chunks] {name} N={n}: compiled in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
        entries.append((name, n, vmfb, k.function, k.args))
    dev = Device(kind.driver, kind.staged_readback)
    load = os.getloadavg()[0]
    try:
        labels, stats = batching_run.measure(dev, entries, args.budget, print)
    finally:
        dev.close()
    results, _ = batching_run.tabulate(labels, stats, print)
    step = results["decode_step"][1]["median_ms"] + results["sample"][1]["median_ms"]
    print(f"load average {load:.2f} -> {os.getloadavg()[0]:.2f}")
    for n, row in sorted(results["decode_chunk"].items()):
        print(f"N={n:2d}: {row['per_request_ms']:.2f} ms/token in chunks, {step:.2f} ms as decode_step + sample calls "
              f"({step / row['per_request_ms']:.3f}x); {1 / n:.3f} syncs/token")


if __name__ == "__main__":
    main()
