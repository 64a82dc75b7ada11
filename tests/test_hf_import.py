"""Language models from Hugging Face directories, imported through transformers' own
modules: tiny random-weight checkpoints of each supported architecture, written here by
`save_pretrained` (no downloads) with SmolLM2's tokenizer, compiled by agentc and run by
IREE, give transformers' logits and its greedy tokens."""

from __future__ import annotations

import shutil
import textwrap
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

QUERY = "Explain in one sentence what a compiler does."
STEPS = 16
_SMALL = {"vocab_size": 49152, "hidden_size": 64, "intermediate_size": 96, "num_hidden_layers": 2, "num_attention_heads": 4,
              "max_position_embeddings": 256, "bos_token_id": 1, "eos_token_id": 2, "initializer_range": 0.3}
ARCHS = {
    "llama": ("LlamaConfig", "LlamaForCausalLM", {"num_key_value_heads": 2}),
    "qwen2": ("Qwen2Config", "Qwen2ForCausalLM", {"num_key_value_heads": 2}),  # q/k/v biases
    "qwen3": ("Qwen3Config", "Qwen3ForCausalLM", {"num_key_value_heads": 2, "head_dim": 16}),  # q/k norms
    # A window shorter than the prompt, so the sliding window decides what is attended.
    "mistral": ("MistralConfig", "MistralForCausalLM", {"num_key_value_heads": 2, "sliding_window": 12}),
    "gemma": ("GemmaConfig", "GemmaForCausalLM", {"num_key_value_heads": 1, "head_dim": 16}),
    "phi3": ("Phi3Config", "Phi3ForCausalLM", {"num_key_value_heads": 2, "pad_token_id": 0}),
    "gpt2": ("GPT2Config", "GPT2LMHeadModel", {"n_positions": 256, "n_inner": 96}),
}


@pytest.fixture(scope="session")
def smollm_tokenizer(tmp_path_factory):
    """SmolLM2's tokenizer files (tokenizer.json, config, chat template), as transformers
    writes them from the installed GGUF."""
    from agentc.models import assets

    out = tmp_path_factory.mktemp("smollm2-tokenizer")
    gguf = assets.smollm2_gguf()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tok = transformers.AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    tok.save_pretrained(out)
    return out


def tiny_checkpoint(arch: str, directory, tokenizer_dir):
    config_cls, model_cls, extra = ARCHS[arch]
    small = dict(_SMALL)
    if arch == "gpt2":
        small = {"vocab_size": 49152, "n_embd": 64, "n_layer": 2, "n_head": 4, "bos_token_id": 1, "eos_token_id": 2,
                     "initializer_range": 0.3}
    config = getattr(transformers, config_cls)(**small, **extra)
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = getattr(transformers, model_cls)(config).eval()
        model.save_pretrained(directory)
    for f in tokenizer_dir.iterdir():
        shutil.copy(f, directory / f.name)
    return model


def _graph(path, model_dir, granularity):
    path.write_text(textwrap.dedent(f"""
        import agentc

        @agentc.agent(sla_ms=5000)
        def chat(query):
            return agentc.llm(query, model={str(model_dir)!r}, max_tokens={STEPS}, name="answer",
                              granularity={granularity!r})
        """))
    return path


@pytest.mark.parametrize("arch, granularity", [(a, "step") for a in ARCHS] + [("llama", "layer"), ("gpt2", "layer")])
def test_checkpoint_matches_transformers(tmp_path, smollm_tokenizer, arch, granularity):
    import agentc
    from agentc.models import registry

    model_dir = tmp_path / arch
    ref_model = tiny_checkpoint(arch, model_dir, smollm_tokenizer)
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


ENCODERS = {
    "bert": ("BertConfig", "BertModel", {}),
    "roberta": ("RobertaConfig", "RobertaModel", {"pad_token_id": 1}),
    "xlm-roberta": ("XLMRobertaConfig", "XLMRobertaModel", {"pad_token_id": 1}),
}


def tiny_encoder(arch: str, directory, pooling: str):
    """A random-weight encoder with MiniLM's tokenizer and a sentence-transformers config
    (pooling, then normalisation)."""
    import json

    from agentc.models import assets

    config_cls, model_cls, extra = ENCODERS[arch]
    config = getattr(transformers, config_cls)(vocab_size=30522, hidden_size=64, intermediate_size=96,
                                               num_hidden_layers=2, num_attention_heads=4,
                                               max_position_embeddings=128, **extra)
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        getattr(transformers, model_cls)(config).eval().save_pretrained(directory)
    src = assets.minilm_dir()
    for f in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt", "modules.json",
              "sentence_bert_config.json"):
        shutil.copy(src / f, directory / f)
    (directory / "1_Pooling").mkdir()
    (directory / "1_Pooling" / "config.json").write_text(json.dumps(
        {"word_embedding_dimension": 64, **{f"pooling_mode_{m}": m == pooling
                                           for m in ("cls_token", "mean_tokens", "max_tokens")}}))


@pytest.mark.parametrize("arch, pooling", [("bert", "mean_tokens"), ("roberta", "cls_token"),
                                           ("xlm-roberta", "max_tokens")])
def test_encoder_matches_sentence_transformers(tmp_path, arch, pooling):
    """Query embeddings from the compiled build equal sentence-transformers' on the same
    directory (its pooling and normalisation), and the index built from them retrieves
    what sentence-transformers' embeddings rank first."""
    import agentc

    st = pytest.importorskip("sentence_transformers")
    model_dir = tmp_path / arch
    tiny_encoder(arch, model_dir, pooling)
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
