"""Model directories as a user meets them: found by path, registered name or the
AGENTC_MODELS search path, listed by `agentc models`, placed from config.json alone, and
each broken file reported in one line that names it."""

from __future__ import annotations

import json
import textwrap

import pytest
from conftest import agentc_cli

pytest.importorskip("transformers")
from agentc.models.hf import random_checkpoint


@pytest.fixture(scope="module")
def llama_dir(tmp_path_factory):
    return random_checkpoint.write("llama", tmp_path_factory.mktemp("models") / "tiny-llama")


def _copy(src, dst, drop=()):
    dst.mkdir()
    for f in src.iterdir():
        if f.name not in drop and f.is_file():
            (dst / f.name).write_bytes(f.read_bytes())
    return dst


def _graph(tmp_path, model):
    g = tmp_path / "graph.py"
    g.write_text(textwrap.dedent(f"""
        import agentc

        @agentc.agent(sla_ms=5000)
        def chat(query):
            return agentc.llm(query, model={str(model)!r}, max_tokens=4, name="answer")
        """))
    return g


def _one_line_error(proc, *needles):
    assert proc.returncode == 2, proc.stderr
    err = [ln for ln in proc.stderr.strip().splitlines() if not ln.startswith("[agentc]")]
    assert "Traceback" not in proc.stderr
    assert len(err) == 1 and err[0].startswith("agentc: error:"), proc.stderr
    for n in needles:
        assert n in err[0], err[0]


def _compile(tmp_path, model):
    return agentc_cli("compile", _graph(tmp_path, model), "-o", tmp_path / "build", "--devices", "cpu")


def test_unsupported_architecture(tmp_path, llama_dir):
    d = _copy(llama_dir, tmp_path / "mamba")
    cfg = json.loads((d / "config.json").read_text())
    (d / "config.json").write_text(json.dumps(dict(cfg, architectures=["MambaForCausalLM"])))
    _one_line_error(_compile(tmp_path, d), "graph.py:6", str(d / "config.json"), "'MambaForCausalLM'",
                    "LlamaForCausalLM", "GPT2LMHeadModel")


def test_missing_tokenizer(tmp_path, llama_dir):
    d = _copy(llama_dir, tmp_path / "no-tok", drop=("tokenizer.json",))
    _one_line_error(_compile(tmp_path, d), "graph.py:6", str(d / "tokenizer.json"))


def test_weights_that_disagree_with_config(tmp_path, llama_dir):
    d = _copy(llama_dir, tmp_path / "wrong")
    cfg = json.loads((d / "config.json").read_text())
    (d / "config.json").write_text(json.dumps(dict(cfg, intermediate_size=128)))
    _one_line_error(_compile(tmp_path, d), "graph.py:6", str(d / "model.safetensors"), "mlp.gate_proj.weight",
                    "[96, 64]", "[128, 64]", "config.json")


def test_truncated_weights(tmp_path, llama_dir):
    d = _copy(llama_dir, tmp_path / "short")
    (d / "model.safetensors").write_bytes((llama_dir / "model.safetensors").read_bytes()[:5])
    _one_line_error(_compile(tmp_path, d), str(d / "model.safetensors"), "not a safetensors file")


def test_unreadable_gguf_file(tmp_path):
    """A directory holding a GGUF file is converted through transformers; one it cannot
    read is one line naming the file."""
    d = tmp_path / "gguf"
    d.mkdir()
    (d / "model-q4_0.gguf").write_bytes(b"GGUF")
    _one_line_error(_compile(tmp_path, d), "graph.py:6", str(d / "model-q4_0.gguf"), "transformers cannot read it")


def test_unknown_model_name(tmp_path):
    _one_line_error(_compile(tmp_path, "no-such-model"), "graph.py:6", "'no-such-model'", "AGENTC_MODELS")


def test_config_only_model_is_placed_not_compiled(tmp_path, llama_dir):
    """A directory with config.json (and a tokenizer) but no weights: `agentc place` prices
    it; `agentc compile` says why it cannot build it."""
    d = _copy(llama_dir, tmp_path / "config-only", drop=("model.safetensors",))
    placed = agentc_cli("place", _graph(tmp_path, d), "--devices", "cpu")
    assert placed.returncode == 0, placed.stderr
    assert "answer/prefill" in placed.stdout and "predicted latency" in placed.stdout
    _one_line_error(_compile(tmp_path, d), "graph.py:6", "no weights", "agentc place")


def test_search_path_registered_names_and_listing(tmp_path, llama_dir, monkeypatch):
    from agentc.models import listing, local_models, register, registry

    zoo = tmp_path / "zoo"
    zoo.mkdir()
    (zoo / "zoo-llama").symlink_to(llama_dir)
    out = agentc_cli("models", env={"AGENTC_MODELS": str(zoo)})
    assert out.returncode == 0, out.stderr
    row = next(ln for ln in out.stdout.splitlines() if ln.startswith("zoo-llama "))
    assert "LlamaForCausalLM" in row and f"AGENTC_MODELS ({zoo})" in row and "llm" in row
    assert "smollm2-135m" in out.stdout

    monkeypatch.setenv("AGENTC_MODELS", str(zoo))
    assert registry.decoder("zoo-llama").config.path == str(llama_dir.resolve())
    register("my-llama", llama_dir)
    monkeypatch.setattr(local_models, "_REGISTERED", dict(local_models._REGISTERED))  # undone after the test
    assert registry.decoder("my-llama").config.name == "my-llama"
    assert any(r["name"] == "my-llama" and r["source"].startswith("registered") for r in listing.available())
    with pytest.raises(ValueError, match="no '/' or '@'"):
        register("a/b", llama_dir)
    # the name given again stands for the new directory, in models already asked for too
    other = _copy(llama_dir, tmp_path / "other-llama")
    register("my-llama", other)
    assert registry.decoder("my-llama").config.path == str(other.resolve())
