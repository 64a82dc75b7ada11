"""Language models from Hugging Face directories, imported through transformers' own
modules: tiny random-weight checkpoints of each supported architecture, written here by
`save_pretrained` (no downloads) with SmolLM2's tokenizer, compiled by agentc and run by
IREE, give transformers' logits and its greedy tokens."""

from __future__ import annotations

import textwrap
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
from agentc.models.hf import random_checkpoint

QUERY = "Explain in one sentence what a compiler does."
STEPS = 16


def _graph(path, model_dir, granularity):
    path.write_text(textwrap.dedent(f"""
        import agentc

        @agentc.agent(sla_ms=5000)
        def chat(query):
            return agentc.llm(query, model={str(model_dir)!r}, max_tokens={STEPS}, name="answer",
                              granularity={granularity!r})
        """))
    return path


@pytest.mark.parametrize("arch, granularity", [(a, "step") for a in random_checkpoint.LLMS]
                         + [("llama", "layer"), ("gpt2", "layer")])
def test_checkpoint_matches_transformers(tmp_path, arch, granularity):
    import agentc
    from agentc.models import registry

    model_dir = random_checkpoint.write(arch, tmp_path / arch)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref_model = transformers.AutoModelForCausalLM.from_pretrained(model_dir).eval()
    placement = agentc.compile(str(_graph(tmp_path / "graph.py", model_dir, granularity)), str(tmp_path / "build"),
                               devices=["cpu"], quiet=True)
    dec = registry.decoder(str(model_dir))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hf_tok = transformers.AutoTokenizer.from_pretrained(model_dir)
    ids = list(hf_tok.apply_chat_template([{"role": "user", "content": QUERY}], add_generation_prompt=True,
                                          tokenize=True)["input_ids"])
    assert dec.chat_ids(QUERY) == ids
    with torch.no_grad():
        logits = ref_model(torch.tensor([ids])).logits[0, -1].numpy()
        gen = ref_model.generate(torch.tensor([ids]), max_new_tokens=STEPS, do_sample=False, eos_token_id=2,
                                 pad_token_id=2)[0, len(ids):].tolist()
    first = "answer/prefill/head" if granularity == "layer" else "answer/prefill"
    with agentc.load(placement.build_dir) as s:
        out = s.run({"query": QUERY}, fetch=[first] + [f"answer/sample{i}" for i in range(STEPS)])
    got_logits = out["values"][first][0]
    # 1e-4 on logits of unit scale; these reach ~11 (Gemma scales its embeddings by sqrt(D)).
    assert np.abs(got_logits - logits).max() <= 1e-4 * max(1.0, np.abs(logits).max())
    tokens = [int(out["values"][f"answer/sample{i}"][0]) for i in range(len(gen))]
    assert tokens == gen
    assert len(set(gen)) > 1  # the weights are not so degenerate that every token is the same
    assert out["outputs"][0] == dec.detokenize(gen)


@pytest.mark.parametrize("arch, pooling", [("bert", "mean"), ("roberta", "cls"), ("xlm-roberta", "max")])
def test_encoder_matches_sentence_transformers(tmp_path, arch, pooling):
    """Query embeddings from the compiled build equal sentence-transformers' on the same
    directory (its pooling and normalisation), and the index built from them retrieves
    what sentence-transformers' embeddings rank first."""
    import agentc

    st = pytest.importorskip("sentence_transformers")
    model_dir = random_checkpoint.write(arch, tmp_path / arch, random_checkpoint.Shape(vocab=30522, max_positions=128),
                                        pooling=pooling)
    corpus = ["The Rhine flows into the North Sea.", "Compilers translate programs.", "Bread needs yeast."]
    (tmp_path / "corpus.txt").write_text("\n".join(corpus))
    (tmp_path / "graph.py").write_text(textwrap.dedent(f"""
        import agentc

        INDEX = agentc.VectorIndex("docs", "corpus.txt", encoder={str(model_dir)!r})

        @agentc.agent(sla_ms=5000)
        def search(query):
            v = agentc.embed(agentc.tokenize(query, model={str(model_dir)!r}), model={str(model_dir)!r}, name="q")
            return agentc.passages(agentc.vector_search(v, INDEX, k=1, name="hit"), INDEX)
        """))
    placement = agentc.compile(str(tmp_path / "graph.py"), str(tmp_path / "build"), devices=["cpu"], quiet=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = st.SentenceTransformer(str(model_dir), device="cpu")
    queries = ["Where does the Rhine end?", "What does a compiler do?"]
    with agentc.load(placement.build_dir) as s:
        for q in queries:
            out = s.run({"query": q}, fetch=["q/pool"])
            want = ref.encode([q], convert_to_numpy=True)
            assert np.abs(out["values"]["q/pool"] - want).max() <= 1e-5
            best = int(np.argmax(ref.encode(corpus, convert_to_numpy=True) @ want[0]))
            assert out["outputs"][0] == corpus[best]


@pytest.mark.parametrize("arch", ["bert-reranker", "xlm-roberta-reranker"])
def test_reranker_orders_passages_as_transformers_scores_them(tmp_path, arch):
    """agentc.rerank over a vector search's hits: the scores equal transformers' for the
    same (query, passage) pairs, and the passages come back in that order."""
    import agentc
    from agentc.models import registry

    model_dir = random_checkpoint.write(arch, tmp_path / arch, random_checkpoint.Shape(vocab=30522, max_positions=160))
    corpus = ["The Rhine flows into the North Sea.", "Compilers translate programs into machine code.",
              "Bread needs yeast, flour and water.", "Rivers carry sediment to the sea.", "MLIR is a compiler IR."]
    (tmp_path / "corpus.txt").write_text("\n".join(corpus))
    (tmp_path / "graph.py").write_text(textwrap.dedent(f"""
        import agentc

        INDEX = agentc.VectorIndex("docs", "corpus.txt", encoder="tiny-encoder")

        @agentc.agent(sla_ms=5000)
        def search(query):
            hits = agentc.vector_search(agentc.embed(agentc.tokenize(query)), INDEX, k=4, name="hits")
            best = agentc.rerank(query, hits, INDEX, model={str(model_dir)!r}, name="rr")
            return agentc.passages(best, INDEX)
        """))
    placement = agentc.compile(str(tmp_path / "graph.py"), str(tmp_path / "build"), devices=["cpu"], quiet=True)
    rr = registry.reranker(str(model_dir))
    with agentc.load(placement.build_dir) as s:
        for q in ["Where does the Rhine end?", "What does a compiler do?"]:
            out = s.run({"query": q}, fetch=["hits/top4", "rr/score", "rr/order"])
            hits = out["values"]["hits/top4"].ravel()
            want = rr.reference_scores(q, [corpus[int(i)] for i in hits])
            assert np.abs(out["values"]["rr/score"] - want).max() <= 1e-4 * max(1.0, np.abs(want).max())
            order = hits[np.argsort(-want, kind="stable")]
            assert out["values"]["rr/order"].ravel().tolist() == order.tolist()
            assert out["outputs"][0] == "\n".join(corpus[int(i)] for i in order)


def test_sampling_and_stop_strings_follow_transformers(tmp_path):
    """Seeded sampling (temperature, top-k, top-p) repeats from request to request, differs
    with the seed, and gives the tokens transformers' logits and warpers give at the same
    uniform draws; a stop string ends greedy generation early and is cut from the text."""
    import agentc
    from agentc.frontend.reference import run_reference
    from agentc.frontend.trace import trace_file
    from agentc.models import registry
    from agentc.models.sampling import before_stop
    from agentc.runtime.host_ops import SKIPPED

    model_dir = random_checkpoint.write("llama", tmp_path / "llama")
    dec = registry.decoder(str(model_dir))
    greedy = dec.detokenize(dec.generate_ids(dec.chat_ids(QUERY), STEPS))
    stop = greedy[len(dec.detokenize(dec.generate_ids(dec.chat_ids(QUERY), 5))):][:3]
    assert stop.strip() and greedy.find(stop) > 0
    m = repr(str(model_dir))
    (tmp_path / "graph.py").write_text(textwrap.dedent(f"""
        import agentc

        @agentc.agent(sla_ms=5000)
        def chat(query):
            a = agentc.llm(query, model={m}, max_tokens=12, temperature=1.3, top_k=30, top_p=0.9, seed=11, name="a")
            b = agentc.llm(query, model={m}, max_tokens=12, temperature=1.3, top_k=30, top_p=0.9, seed=12, name="b")
            c = agentc.llm(query, model={m}, max_tokens={STEPS}, stop=[{stop!r}, "never in the text"], name="c")
            return agentc.join([a, b, c], "\\n--\\n")
        """))
    placement = agentc.compile(str(tmp_path / "graph.py"), str(tmp_path / "build"), devices=["cpu"], quiet=True)
    fetch = [f"{n}/sample{i}" for n in "abc" for i in range(STEPS)]
    with agentc.load(placement.build_dir) as s:
        first, again = s.run({"query": QUERY}, fetch=fetch), s.run({"query": QUERY})
    assert first["outputs"] == again["outputs"]
    ref = run_reference(trace_file(tmp_path / "graph.py"), {"query": QUERY})
    assert first["outputs"] == ref["outputs"]
    ran = {k: v for k, v in first["values"].items() if v is not SKIPPED}  # samples after a stop did not run
    tokens = {n: [int(ran[f"{n}/sample{i}"][0]) for i in range(STEPS) if f"{n}/sample{i}" in ran] for n in "abc"}
    assert tokens["a"] != tokens["b"]
    c = first["outputs"][0].split("\n--\n")[2]
    assert c == before_stop(greedy, [stop]) and len(tokens["c"]) < STEPS


def test_any_torch_module_as_an_operator(tmp_path):
    """agentc.module: a user's torch.nn.Module (weights, LayerNorm, GELU) and a plain
    function on the graph's tensors, compiled and run: the results equal PyTorch's."""
    import agentc

    (tmp_path / "corpus.txt").write_text("a\nb\nc\n")
    (tmp_path / "graph.py").write_text(textwrap.dedent("""
        import torch

        import agentc

        class Head(torch.nn.Module):
            def __init__(self):
                super().__init__()
                torch.manual_seed(3)
                self.proj = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.GELU(), torch.nn.LayerNorm(32),
                                                torch.nn.Linear(32, 4))

            def forward(self, x):
                return torch.softmax(self.proj(x), dim=-1), self.proj(x).argmax(-1).to(torch.int32)

        def cosine(a, b):
            return (a * b).sum(-1, keepdim=True)

        HEAD = Head()

        @agentc.agent(sla_ms=5000)
        def classify(query):
            v = agentc.embed(agentc.tokenize(query), name="v")
            probs, label = agentc.module(HEAD, v, name="head")
            same = agentc.module(cosine, v, v, name="self_sim")
            return agentc.format("{0}", query)
        """))
    placement = agentc.compile(str(tmp_path / "graph.py"), str(tmp_path / "build"), devices=["cpu"], quiet=True)
    assert {op.name for op in placement.ops if op.kind == "call"} >= {"head/forward", "self_sim/forward"}
    from agentc.frontend.trace import trace_file

    graph = trace_file(tmp_path / "graph.py")
    head = graph.modules["head"]
    with agentc.load(placement.build_dir) as s:
        out = s.run({"query": "hello world"}, fetch=["v/pool", "head/forward", "self_sim/forward"])
    v = torch.from_numpy(out["values"]["v/pool"])
    with torch.no_grad():
        want, _ = head(v)
    assert np.abs(out["values"]["head/forward"] - want.numpy()).max() <= 1e-5
    assert np.abs(out["values"]["self_sim/forward"] - (v * v).sum(-1, keepdim=True).numpy()).max() <= 1e-5
