"""Indexes users bring: passages as JSON lines or text, embeddings as a .npy matrix or a
FAISS index file; searched exactly on the device as the embeddings say (checked against
FAISS's exact search), and each broken file reported in one line naming it."""

from __future__ import annotations

import json
import textwrap

import numpy as np
import pytest
from conftest import agentc_cli

PASSAGES = ["The Rhine flows into the North Sea.", "Compilers translate programs into machine code.",
            "Bread needs yeast, flour and water.", "Rivers carry sediment to the sea.", "MLIR is a compiler IR.",
            "The Danube flows into the Black Sea.", "Yeast ferments sugar.", "GPUs run many threads at once."]
QUERIES = ["Where does the Rhine end?", "What does a compiler do?", "How is bread made?"]


def _files(tmp_path, n_rows=None, dim=None):
    from agentc.models import registry

    emb = registry.encoder("tiny-encoder").embed_texts(PASSAGES)
    (tmp_path / "p.jsonl").write_text("\n".join(json.dumps({"text": p, "id": i}) for i, p in enumerate(PASSAGES)))
    np.save(tmp_path / "e.npy", emb[:n_rows, :dim] if (n_rows or dim) else emb)
    return emb


def _graph(tmp_path, embeddings: str):
    g = tmp_path / "graph.py"
    g.write_text(textwrap.dedent(f"""
        import agentc

        INDEX = agentc.VectorIndex("docs", "p.jsonl", encoder="tiny-encoder", embeddings={embeddings!r})

        @agentc.agent(sla_ms=5000)
        def search(query):
            hits = agentc.vector_search(agentc.embed(agentc.tokenize(query), name="q"), INDEX, k=3, name="hits")
            return agentc.passages(hits, INDEX)
        """))
    return g


@pytest.mark.parametrize("kind", ["npy", "faiss-flat", "faiss-hnsw", "faiss-ivf"])
def test_brought_index_searches_as_faiss_exact_search(tmp_path, kind):
    import agentc

    faiss = pytest.importorskip("faiss")
    emb = _files(tmp_path)
    name = "e.npy"
    if kind != "npy":
        if kind == "faiss-ivf":  # vectors found by id only through a direct map
            index = faiss.IndexIVFFlat(faiss.IndexFlatIP(emb.shape[1]), emb.shape[1], 2, faiss.METRIC_INNER_PRODUCT)
            index.train(emb)
        else:
            index = faiss.IndexFlatIP(emb.shape[1]) if kind == "faiss-flat" else faiss.IndexHNSWFlat(emb.shape[1], 8)
        index.add(emb)
        name = f"{kind}.faiss"
        faiss.write_index(index, str(tmp_path / name))
    placement = agentc.compile(str(_graph(tmp_path, name)), str(tmp_path / "build"), devices=["cpu"], quiet=True)
    exact = _exact(faiss, emb)
    with agentc.load(placement.build_dir) as s:
        for q in QUERIES:
            out = s.run({"query": q}, fetch=["q/pool", "hits/top3"])
            _, want = exact.search(out["values"]["q/pool"], 3)
            assert out["values"]["hits/top3"].tolist() == want.tolist()
            assert out["outputs"][0] == "\n".join(PASSAGES[i] for i in want[0])


def _exact(faiss, emb):
    """FAISS's exact inner-product search over the embeddings: the reference."""
    index = faiss.IndexFlatIP(emb.shape[1])
    index.add(emb)
    return index


def _one_line_error(proc, *needles):
    assert proc.returncode == 2, proc.stderr
    err = [ln for ln in proc.stderr.strip().splitlines() if not ln.startswith("[agentc]")]
    assert "Traceback" not in proc.stderr and len(err) == 1, proc.stderr
    for n in needles:
        assert n in err[0], err[0]


def test_brought_index_errors_name_the_file(tmp_path):
    from agentc.models import registry

    dim = registry.encoder("tiny-encoder").config.dim
    _files(tmp_path, n_rows=5)
    g = _graph(tmp_path, "e.npy")
    _one_line_error(agentc_cli("compile", g, "-o", tmp_path / "b", "--devices", "cpu"),
                    "graph.py:4", str(tmp_path / "e.npy"), "5 embeddings for 8 passages")
    _files(tmp_path, dim=dim - 1)
    _one_line_error(agentc_cli("compile", g, "-o", tmp_path / "b", "--devices", "cpu"),
                    str(tmp_path / "e.npy"), f"[8, {dim - 1}]", f"{dim}-dim")
    _files(tmp_path)
    with open(tmp_path / "p.jsonl", "a") as f:
        f.write("\n{not json\n")
    _one_line_error(agentc_cli("compile", g, "-o", tmp_path / "b", "--devices", "cpu"),
                    f"{tmp_path / 'p.jsonl'}:9", "not JSON")


def test_approximate_search_on_the_host(tmp_path):
    """search="ann": a FAISS HNSW index built at compile time answers on the host (one
    ann_search operator, charged the latency measured at compile time, its recall in the
    plan); on this small corpus it finds what exact search finds."""
    import agentc

    faiss = pytest.importorskip("faiss")
    emb = _files(tmp_path)
    g = _graph(tmp_path, "e.npy")
    g.write_text(g.read_text().replace("embeddings='e.npy')", "embeddings='e.npy', search='ann')"))
    placement = agentc.compile(str(g), str(tmp_path / "build"), devices=["cpu"], quiet=True)
    ann = [op for op in placement.ops if op.name.startswith("hits/")]
    assert [(op.name, op.kind, op.device) for op in ann] == [("hits/ann", "ann_search", "host")]
    plan = json.loads((tmp_path / "build" / "plan.json").read_text())
    attrs = next(op["attrs"] for op in plan["ops"] if op["name"] == "hits/ann")
    assert attrs["recall"] == 1.0 and attrs["latency_ms"] > 0
    exact = _exact(faiss, emb)
    with agentc.load(placement.build_dir) as s:
        for q in QUERIES:
            out = s.run({"query": q}, fetch=["q/pool", "hits/ann"])
            _, want = exact.search(out["values"]["q/pool"], 3)
            assert out["values"]["hits/ann"].tolist() == want.tolist()


@pytest.mark.parametrize("n, min_recall, want", [(8, 0.95, "ann"), (50_000, 0.9, "ann"), (50_000, 0.999, "exact")])
def test_auto_search_follows_the_cost_model(tmp_path, n, min_recall, want):
    """search="auto": on this CPU a host FAISS search answers sooner than the two device
    kernels at any size, so the approximate index is chosen while its measured recall
    reaches min_recall; 50,000 random 64-dim vectors (no clusters to exploit) recall ~0.97
    with HNSW, so asking for 0.999 keeps the search exact."""
    import agentc

    pytest.importorskip("faiss")
    from agentc.models import registry

    dim = registry.encoder("tiny-encoder").config.dim
    emb = np.random.default_rng(0).standard_normal((n, dim))
    np.save(tmp_path / "e.npy", (emb / np.linalg.norm(emb, axis=1, keepdims=True)).astype(np.float32))
    (tmp_path / "p.jsonl").write_text("\n".join(json.dumps(f"passage {i}") for i in range(n)))
    g = _graph(tmp_path, "e.npy")
    g.write_text(g.read_text().replace("embeddings='e.npy')", f"embeddings='e.npy', search='auto', "
                                                              f"min_recall={min_recall})"))
    placement = agentc.place(str(g), ["cpu"])
    kinds = {op.kind for op in placement.ops if op.name.startswith("hits/")}
    assert kinds == ({"ann_search"} if want == "ann" else {"call"})


def test_min_recall_is_checked(tmp_path):
    import agentc

    _files(tmp_path)
    g = _graph(tmp_path, "e.npy")
    g.write_text(g.read_text().replace("embeddings='e.npy')", "embeddings='e.npy', search='auto', min_recall=1.5)"))
    with pytest.raises(agentc.AgentError, match=r"graph.py:4: VectorIndex: min_recall must be a number in \[0, 1\]"):
        agentc.place(str(g), ["cpu"])
