"""`agentc bench index`: top-10 search over 10k / 100k / 1M passages, agentc's exact search
compiled by IREE for this CPU beside FAISS's own exact (flat) and approximate (HNSW, IVF)
search, one query at a time, in the same process.

The corpus is synthetic, 384-dim like MiniLM's: unit vectors drawn around 2,000 random
centres (embeddings of real text cluster by topic, and approximate indexes rely on it);
queries are corpus vectors with noise. Recall@10 is against FAISS's exact search. agentc's
exact search is what a build runs: the similarity kernel (corpus resident as the kernel's
weight) and the top-10 kernel, chained on the device, the indices read back.
The anchor is FAISS flat search (brute force, BLAS) measured beside it.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import numpy as np

DIM, K, QUERIES = 384, 10, 100


def _corpus(n: int, rng) -> np.ndarray:
    centres = rng.standard_normal((2000, DIM)).astype(np.float32)
    x = centres[rng.integers(0, len(centres), n)] + 0.35 * rng.standard_normal((n, DIM)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _queries(corpus: np.ndarray, rng) -> np.ndarray:
    q = corpus[rng.choice(len(corpus), QUERIES, replace=False)] + 0.02 * rng.standard_normal((QUERIES, DIM))
    return (q / np.linalg.norm(q, axis=1, keepdims=True)).astype(np.float32)


def _time_each(fn, queries) -> tuple[float, np.ndarray]:
    """Median seconds per query, and the (Q, K) indices."""
    fn(queries[0])  # warm
    times, found = [], []
    for q in queries:
        t0 = time.perf_counter()
        found.append(np.asarray(fn(q)).reshape(-1)[:K])
        times.append(time.perf_counter() - t0)
    return statistics.median(times), np.stack(found)


def _recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(t)) / K for f, t in zip(found, truth)]))


def compile_kernels(n: int, target: str) -> tuple[bytes, bytes]:
    """The build's two kernels (agentc.models.kernels) for n passages, compiled for
    `target`: similarity (corpus, query) and top-k (scores)."""
    from agentc.build.iree_compile import compile_module
    from agentc.devices import KINDS
    from agentc.models.export import export_function
    from agentc.models.kernels import similarity, top_k

    def topk(scores):
        return top_k(scores, K)

    corpus = np.zeros((n, DIM), np.float32)  # shapes only: the corpus is the kernel's weight argument
    sim = export_function(similarity, [corpus, corpus[:1]], "similarity", ["corpus"], {"bench": "index", "n": n})
    top = export_function(topk, [np.zeros((1, n), np.float32)], "topk", [], {"bench": "index-top", "n": n})
    kind = KINDS[target]
    return tuple(compile_module(t, kind.target, kind.compile_flags, target)[0] for t in (sim, top))


def exact_search(dev, kernels: tuple[bytes, bytes], corpus: np.ndarray):
    """search(query) -> indices, through the two kernels on `dev` with the corpus resident."""
    f_sim, f_top = dev.load(kernels[0], "similarity"), dev.load(kernels[1], "topk")
    resident = dev.upload(corpus)  # the index's weights stay on the device

    def search(query):
        scores = f_sim(resident, dev.upload(query[None]))
        return dev.readback(f_top(scores))

    return search


def _agentc_exact(corpus: np.ndarray):
    from agentc.bench.timing import Device
    from agentc.devices import KINDS

    kind = KINDS["cpu"]
    dev = Device(kind.driver, kind.staged_readback)
    return dev, exact_search(dev, compile_kernels(len(corpus), "cpu"), corpus)


def corpora(sizes: list[int]):
    """(n, corpus, queries) per size, from one seeded generator: the same here and on the
    machine that measures compiled artifacts (agentc/bench/index_run.py)."""
    rng = np.random.default_rng(0)
    for n in sizes:
        corpus = _corpus(n, rng)
        yield n, corpus, _queries(corpus, rng)


def compile_artifacts(target: str, art: Path, quick: bool = False) -> Path:
    """The exact-search kernels for each size compiled for `target` into `art`, with a
    manifest that agentc/bench/index_run.py measures where the device is."""
    import json

    from agentc.devices import KINDS

    kind = KINDS[target]
    art.mkdir(parents=True, exist_ok=True)
    sizes = _sizes(quick)
    entries = []
    for n in sizes:
        print(f"[bench] index {n:,}: compiling for {target}", file=sys.stderr)
        sim, top = compile_kernels(n, target)
        (art / f"similarity_{n}.vmfb").write_bytes(sim)
        (art / f"top{K}_{n}.vmfb").write_bytes(top)
        entries.append({"passages": n, "similarity": f"similarity_{n}.vmfb", "top": f"top{K}_{n}.vmfb"})
    manifest = {"target": target, "driver": kind.driver, "staged_readback": kind.staged_readback, "sizes": sizes,
                "dim": DIM, "k": K, "queries": QUERIES, "kernels": entries}
    (art / "manifest.json").write_text(json.dumps(manifest) + "\n")
    print(f"[bench] measure there: python -m agentc.bench.index_run {art} --out OUT", file=sys.stderr)
    return art


def _sizes(quick: bool) -> list[int]:
    return [10_000, 50_000] if quick else [10_000, 100_000, 1_000_000]


def _faiss(corpus: np.ndarray, kind: str):
    import faiss

    t0 = time.perf_counter()
    if kind == "flat":
        index = faiss.IndexFlatIP(DIM)
    elif kind == "hnsw":
        index = faiss.IndexHNSWFlat(DIM, 32, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = 64
    else:
        nlist = int(np.sqrt(len(corpus)))
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(DIM), DIM, nlist, faiss.METRIC_INNER_PRODUCT)
        index.train(corpus[np.random.default_rng(1).choice(len(corpus), min(len(corpus), 40 * nlist), replace=False)])
        index.nprobe = 16
    index.add(corpus)
    if kind == "hnsw":
        index.hnsw.efSearch = 64
    return time.perf_counter() - t0, lambda q: index.search(q[None], K)[1]


def run(args, out: Path):
    quick = bool(getattr(args, "quick", False))
    sizes = _sizes(quick)
    hnsw_max = 100_000  # HNSW's build on two cores grows past ten minutes at 1M
    results = []
    for n, corpus, queries in corpora(sizes):
        _, flat = _faiss(corpus, "flat")
        flat_s, truth = _time_each(flat, queries)
        row = {"passages": n, "faiss_flat_ms": round(flat_s * 1e3, 3)}
        t0 = time.perf_counter()
        dev, exact = _agentc_exact(corpus)
        row["agentc_compile_s"] = round(time.perf_counter() - t0, 1)
        try:
            s, found = _time_each(exact, queries)
            row.update(agentc_exact_ms=round(s * 1e3, 3), agentc_exact_recall=round(_recall(found, truth), 4))
        finally:
            dev.close()
        for kind in ("hnsw", "ivf"):
            if kind == "hnsw" and n > hnsw_max:
                continue
            build_s, fn = _faiss(corpus, kind)
            s, found = _time_each(fn, queries)
            row.update({f"faiss_{kind}_build_s": round(build_s, 1), f"faiss_{kind}_ms": round(s * 1e3, 3),
                        f"faiss_{kind}_recall": round(_recall(found, truth), 4)})
        row["agentc_exact_over_faiss_flat"] = round(row["agentc_exact_ms"] / row["faiss_flat_ms"], 2)
        results.append(row)
        print(f"[bench] index {n:>9,}: agentc exact {row['agentc_exact_ms']:.2f} ms (recall "
              f"{row['agentc_exact_recall']:.3f}), FAISS flat {row['faiss_flat_ms']:.2f} ms, "
              f"ivf {row['faiss_ivf_ms']:.2f} ms (recall {row['faiss_ivf_recall']:.3f})", file=sys.stderr)
    (out / "table.md").write_text(_table(results))
    last = results[-1]
    tag = f"{last['passages'] // 1000}k"
    summary = {f"agentc_exact_{tag}_ms": last["agentc_exact_ms"], f"faiss_flat_{tag}_ms": last["faiss_flat_ms"],
               f"faiss_ivf_{tag}_ms": last["faiss_ivf_ms"], f"faiss_ivf_{tag}_recall": last["faiss_ivf_recall"],
               "agentc_exact_recall_min": min(r["agentc_exact_recall"] for r in results),
               f"agentc_exact_over_faiss_flat_{tag}": last["agentc_exact_over_faiss_flat"]}
    return {"quick": quick, "sizes": sizes, "dim": DIM, "k": K, "queries": QUERIES}, results, summary


def _table(results: list[dict]) -> str:
    lines = [("| passages | agentc exact ms | recall | FAISS flat ms | agentc / flat | FAISS HNSW ms | recall | "
             "FAISS IVF ms | recall |"), "|" + "---|" * 9]
    for r in results:
        hnsw = (f"{r['faiss_hnsw_ms']} | {r['faiss_hnsw_recall']}" if "faiss_hnsw_ms" in r else "not built | -")
        lines.append(f"| {r['passages']:,} | {r['agentc_exact_ms']} | {r['agentc_exact_recall']} | {r['faiss_flat_ms']} | "
                     f"{r['agentc_exact_over_faiss_flat']}x | {hnsw} | {r['faiss_ivf_ms']} | {r['faiss_ivf_recall']} |")
    return "\n".join(lines) + "\n"
