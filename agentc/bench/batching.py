"""`agentc bench batching`: does serving concurrent requests as one batched call pay, per
stage kind, on this machine's CPU through IREE?

For B = 1, 2, 4, 8, 16 requests at once: one MiniLM-L6 block (the encoder stage's
operator, 128 tokens), the vector search's similarity over a 100,000 x 384 index and its
top-3. Each operator is exported at batch B from the model's own PyTorch code and compiled
with the cpu kind's flags, inputs uploaded once, timed interleaved (agentc/bench/timing.py).
The anchor is B = 1 measured in the same run: `speedup_B` = B x time(1) / time(B), the
requests per second one replica gains from batching B of them. LLM prefill and decode are
not measured: the decoder's KV cache is laid out for one sequence, so it has no batched
variant to compile yet.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

BATCHES = (1, 2, 4, 8, 16)
INDEX_N, DIM, SEQ, K = 100_000, 384, 128, 3


def _say(msg: str) -> None:
    print(f"[bench batching] {msg}", file=sys.stderr, flush=True)


def _kernels(batch: int, quick: bool) -> dict[str, tuple[str, str, list[np.ndarray]]]:
    """name -> (module text, function, arguments) for one batch size."""
    from agentc.models import registry
    from agentc.models.export import export_function
    from agentc.models.kernels import similarity, top_k

    enc = registry.encoder("minilm-l6-random")
    c = enc.config
    layer = enc.groups[f"{c.name}/l0"]
    rng = np.random.default_rng(0)
    ids = rng.integers(1000, 2000, (batch, SEQ)).astype(np.int32)
    x = rng.standard_normal((batch, SEQ, c.dim)).astype(np.float32)
    n = INDEX_N // 10 if quick else INDEX_N
    corpus = rng.standard_normal((n, DIM)).astype(np.float32)
    q = rng.standard_normal((batch, DIM)).astype(np.float32)
    scores = (q @ corpus.T).astype(np.float32)

    def topk(s):
        return top_k(s, K)

    out = {}
    block_args = [*layer.values(), x, ids]
    out["minilm_block"] = (export_function(enc.block, block_args, f"block_b{batch}", list(layer), {"bench": "batch"}),
                           f"block_b{batch}", block_args)
    out["similarity"] = (export_function(similarity, [corpus, q], f"sim_b{batch}", ["c"], {"bench": "batch", "n": n}),
                         f"sim_b{batch}", [corpus, q])
    out["top3"] = (export_function(topk, [scores], f"top_b{batch}", [], {"bench": "batch", "n": n}),
                   f"top_b{batch}", [scores])
    return out


def run(args, out: Path):
    from agentc.bench.timing import Device, interleaved
    from agentc.build.iree_compile import compile_module
    from agentc.devices import KINDS

    quick = bool(getattr(args, "quick", False))
    kind = KINDS["cpu"]
    dev = Device(kind.driver, kind.staged_readback)
    calls, labels = [], []
    try:
        for b in BATCHES:
            for name, (text, fn, argv) in _kernels(b, quick).items():
                _say(f"{name} at batch {b}: compiling")
                vmfb, _ = compile_module(text, kind.target, kind.compile_flags, "cpu")
                invoke = dev.load(vmfb, fn)
                uploaded = [dev.upload(a) for a in argv]
                calls.append(lambda invoke=invoke, uploaded=uploaded: invoke(*uploaded))
                labels.append((name, b))
        _say(f"timing {len(calls)} kernels interleaved")
        stats = interleaved(calls, budget_s=0.5 if quick else 2.0, rounds=5)
    finally:
        dev.close()
    results: dict[str, dict] = {}
    for (name, b), st in zip(labels, stats):
        results.setdefault(name, {})[b] = {"median_ms": round(st.median_s * 1e3, 4),
                                           "per_request_ms": round(st.median_s * 1e3 / b, 4)}
    summary = {}
    for name, rows in results.items():
        for b, row in rows.items():
            row["speedup"] = round(b * rows[1]["median_ms"] / row["median_ms"], 3)
        summary[f"{name}_speedup_b8"] = rows[8]["speedup"]
        summary[f"{name}_speedup_b16"] = rows[16]["speedup"]
        _say(f"{name}: " + ", ".join(f"B={b} {r['median_ms']:.3f} ms (x{r['speedup']:.2f})" for b, r in rows.items()))
    _plot(results, out / "batching.png")
    params = {"batches": list(BATCHES), "index": [INDEX_N // 10 if quick else INDEX_N, DIM], "seq": SEQ,
              "device": "cpu (this machine)", "quick": quick}
    return params, results, summary


def _plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for name, rows in results.items():
        bs = sorted(rows)
        ax.plot(bs, [rows[b]["speedup"] for b in bs], "o-", label=name)
    ax.plot(BATCHES, BATCHES, ":", color="grey", label="ideal")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log", base=2)
    ax.set_xlabel("requests batched (B)")
    ax.set_ylabel("requests/s per replica vs B = 1")
    ax.set_title("batching on this CPU (IREE)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
