"""Weights streamed in bfloat16 (agentc.models.half_weights): a build whose runtime reads
bfloat16 copies computes what transformers computes with those weights rounded to bfloat16,
and stays near the float32 model. The form is cuda's; here the cpu runtime is given it, so
IREE's CPU code runs the same kernels."""

from __future__ import annotations

import json
import re
import textwrap
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
from agentc.models.hf import random_checkpoint

QUERY = "Explain in one sentence what a compiler does."
STEPS = 12


def _graph(tmp_path, model_dir, granularity: str) -> str:
    graph = tmp_path / "graph.py"
    graph.write_text(textwrap.dedent(f"""
        import agentc

        @agentc.agent(sla_ms=5000)
        def chat(query):
            return agentc.llm(query, model={str(model_dir)!r}, max_tokens={STEPS}, name="answer",
                              granularity={granularity!r})
        """))
    return str(graph)


def _reference(model_dir, rounded: bool):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = transformers.AutoModelForCausalLM.from_pretrained(model_dir).eval()
    if rounded:
        with torch.no_grad():
            for p in m.parameters():
                if p.dtype == torch.float32 and p.dim() >= 2:
                    p.copy_(p.to(torch.bfloat16).float())
    return m


CUDA = {"decode_attention": "per_head", "linear_form": "transposed_row_reduce", "weight_dtype": "bfloat16",
        "projections": "fused"}


@pytest.mark.parametrize("arch, granularity, form", [
    ("llama", "step", {"weight_dtype": "bfloat16"}), ("llama", "layer", {"weight_dtype": "bfloat16"}),
    ("llama", "step", CUDA), ("qwen2", "layer", CUDA), ("llama", "step", {**CUDA, "weight_dtype": "float32"})])
def test_bfloat16_weights_compute_transformers_on_rounded_weights(tmp_path, monkeypatch, arch, granularity, form):
    """Also in all of cuda's forms, whose copies stack each layer's query, key and value
    weights into one product (agentc.models.fused_projections; qwen2's have biases); in
    float32 the stacks are the only copies, and the build computes the float32 model."""
    import agentc
    from agentc.models import registry
    from agentc.models.hf.imported import Imported

    monkeypatch.setattr(Imported, "RUNTIME_FORMS", {"cpu": form})
    model_dir = random_checkpoint.write(arch, tmp_path / arch)
    placement = agentc.compile(_graph(tmp_path, model_dir, granularity), str(tmp_path / "build"), devices=["cpu"],
                               quiet=True)
    manifest = json.loads((tmp_path / "build" / "manifest.json").read_text())
    halves = form["weight_dtype"] == "bfloat16"
    assert ("bfloat16" in manifest["precision"]["weights"][registry.decoder(str(model_dir)).config.name]) == halves
    module = (tmp_path / "build" / "cpu.mlir").read_text()
    stacked = set(re.findall(r'"([^"]*q_proj\.weight\+k_proj\.weight\+v_proj\.weight(?:\.bf16)?)"', module))
    assert len(stacked) == (2 if form.get("projections") == "fused" else 0), stacked  # one a layer, read
    ids = registry.decoder(str(model_dir)).chat_ids(QUERY)
    first = "answer/prefill/head" if granularity == "layer" else "answer/prefill"
    with agentc.load(placement.build_dir) as s:
        out = s.run({"query": QUERY}, fetch=[first] + [f"answer/sample{i}" for i in range(STEPS)])
    got = out["values"][first][0]
    with torch.no_grad():
        rounded = _reference(model_dir, halves)
        want = rounded(torch.tensor([ids])).logits[0, -1].numpy()
        full = _reference(model_dir, False)(torch.tensor([ids])).logits[0, -1].numpy()
        gen = rounded.generate(torch.tensor([ids]), max_new_tokens=STEPS, do_sample=False, eos_token_id=2,
                               pad_token_id=2)[0, len(ids):].tolist()
    scale = max(1.0, np.abs(want).max())
    assert np.abs(got - want).max() <= 1e-4 * scale  # the rounded weights, computed in float32
    if halves:  # ...which are not the float32 weights (the copies are what runs), and stay near them.
        assert 1e-4 * scale < np.abs(got - full).max() <= 5e-2 * scale
    assert [int(out["values"][f"answer/sample{i}"][0]) for i in range(len(gen))] == gen


def test_a_quantized_cpu_step_takes_the_copies_of_another_runtime(tmp_path, monkeypatch):
    """A GGUF model's decode step on the cpu is the quantized one; when a runtime's form
    reads bfloat16 copies (here the cpu's own, so its prefill reads them), every form of the
    step takes them (one wrapper calls each, or the module would not compile), and the build
    still generates transformers' greedy text on the dequantized file."""
    import agentc
    from agentc.models import registry
    from agentc.models.hf import random_gguf
    from agentc.models.hf.imported import Imported

    monkeypatch.setenv("AGENTC_CPU_KERNEL", "exact")
    monkeypatch.setattr(Imported, "RUNTIME_FORMS", {"cpu": {"weight_dtype": "bfloat16"}})
    model_dir = random_gguf.write(tmp_path / "tiny")
    placement = agentc.compile(_graph(tmp_path, model_dir, "step"), str(tmp_path / "build"), devices=["cpu"],
                               quiet=True)
    dec = registry.decoder(str(model_dir))
    manifest = json.loads((tmp_path / "build" / "manifest.json").read_text())
    assert manifest["precision"]["weights"][dec.config.name] == "bfloat16+float32+q4_1+q8_0"
    with agentc.load(placement.build_dir) as s:
        assert s.run({"query": QUERY})["outputs"][0] == dec.reference_generate(QUERY, STEPS)
