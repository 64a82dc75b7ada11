"""Measure `agentc bench index`'s exact search where the device is: a GPU machine with only
numpy, iree.runtime and PyTorch (the kernels of `agentc bench index --target cuda
--artifacts DIR`, compiled elsewhere).

    python -m agentc.bench.index_run DIR --out OUT

The corpora are re-made from the same seed (agentc.bench.index_search.corpora). Beside
agentc's two kernels: PyTorch on the same GPU, `q @ C.T` then `torch.topk`, eager and
captured in a CUDA graph (the host CPU there is slow, so eager PyTorch is launch-bound).
Recall@10 is against exact search in float64 NumPy. Writes OUT/summary.json in the named
benchmarks' schema and prints its key=value lines.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from agentc.bench.index_search import K, _recall, _time_each, corpora, exact_search
from agentc.bench.record import Recording


def _torch_search(corpus: np.ndarray, graph: bool):
    import torch

    c = torch.from_numpy(corpus).cuda()
    q = torch.zeros(1, corpus.shape[1], device="cuda")
    if not graph:
        def search(query):
            q.copy_(torch.from_numpy(query[None]))
            return torch.topk(q @ c.T, K).indices.cpu().numpy()
        return search
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        for _ in range(3):
            torch.topk(q @ c.T, K)
    torch.cuda.current_stream().wait_stream(s)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        found = torch.topk(q @ c.T, K).indices

    def search(query):
        q.copy_(torch.from_numpy(query[None]))
        g.replay()
        return found.cpu().numpy()

    return search


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("artifacts")
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    import torch

    from agentc.bench.timing import Device

    art = Path(args.artifacts)
    manifest = json.loads((art / "manifest.json").read_text())
    files = {e["passages"]: e for e in manifest["kernels"]}
    with Recording("index", Path(args.out)) as rec:
        rec.params = {k: manifest[k] for k in ("target", "sizes", "dim", "k", "queries")} | {
            "device": torch.cuda.get_device_name(0)}
        rec.results = results = []
        for n, corpus, queries in corpora(manifest["sizes"]):
            truth = np.argsort(-(queries.astype(np.float64) @ corpus.T.astype(np.float64)), axis=1)[:, :K]
            dev = Device(manifest["driver"], manifest["staged_readback"])
            try:
                kernels = tuple((art / files[n][k]).read_bytes() for k in ("similarity", "top"))
                s, found = _time_each(exact_search(dev, kernels, corpus), queries)
                row = {"passages": n, "agentc_exact_ms": round(s * 1e3, 3),
                       "agentc_exact_recall": round(_recall(found, truth), 4)}
            finally:
                dev.close()
            for label, graph in (("torch_eager", False), ("torch_cuda_graph", True)):
                s, found = _time_each(_torch_search(corpus, graph), queries)
                row.update({f"{label}_ms": round(s * 1e3, 3), f"{label}_recall": round(_recall(found, truth), 4)})
            row["agentc_over_torch_cuda_graph"] = round(row["agentc_exact_ms"] / row["torch_cuda_graph_ms"], 2)
            results.append(row)
            print(f"[bench] index {n:>9,}: agentc exact {row['agentc_exact_ms']:.3f} ms, torch eager "
                  f"{row['torch_eager_ms']:.3f} ms, CUDA graph {row['torch_cuda_graph_ms']:.3f} ms", file=sys.stderr)
        last = results[-1]
        tag = f"{last['passages'] // 1000}k"
        rec.summary = {f"gpu_agentc_exact_{tag}_ms": last["agentc_exact_ms"],
                       f"gpu_torch_cuda_graph_{tag}_ms": last["torch_cuda_graph_ms"],
                       f"gpu_agentc_over_torch_cuda_graph_{tag}": last["agentc_over_torch_cuda_graph"],
                       "gpu_agentc_exact_recall_min": min(r["agentc_exact_recall"] for r in results)}
    return 0


if __name__ == "__main__":
    sys.exit(main())
