"""Batched LLM step operators (agentc.models.batched): B requests in one call give each
request what PyTorch's full recomputation gives it alone, and compile through IREE."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")


def _model(tmp_path, monkeypatch, name="test-batched-llama"):
    """A 2-layer random Llama checkpoint (vocabulary 512) registered as `name` for the test,
    at prompt budget 12 and cache 24."""
    from agentc.models import local_models, registry
    from agentc.models.hf import random_checkpoint as rc

    path = rc.write("llama", tmp_path / name, rc.Shape(vocab=512))
    monkeypatch.setitem(local_models._REGISTERED, name, path)
    registry._directory_model.cache_clear()
    registry.decoder.cache_clear()
    return registry.decoder(f"{name}@12x24")


def _weights(model):
    return [torch.from_numpy(np.array(a)) for a in model.all_group.values()]


def _prompts(model, lengths, seed=0):
    rng = np.random.default_rng(seed)
    return [list(rng.integers(3, model.config.vocab, n)) for n in lengths]


def test_batched_generation_equals_full_recomputation(tmp_path, monkeypatch):
    """Three prompts of different lengths prefilled as one batch, then decoded as one batch
    of sequences at different positions: each sequence's greedy tokens equal PyTorch
    recomputing its whole sequence alone, with no cache and no padding."""
    from agentc.models import batched

    model = _model(tmp_path, monkeypatch)
    P, steps = model.config.prompt_len, 6
    prompts = _prompts(model, [5, 12, 8])
    ids = np.zeros((3, P), np.int32)
    for b, p in enumerate(prompts):
        ids[b, :len(p)] = p
    length = torch.tensor([len(p) for p in prompts], dtype=torch.int32)
    w = _weights(model)
    with torch.no_grad():
        logits, *caches = batched.prefill(model, *w, torch.from_numpy(ids), length)
        token, pos, got = logits.argmax(-1).to(torch.int32), length, [[] for _ in prompts]
        for _ in range(steps):
            for b in range(3):
                got[b].append(int(token[b]))
            logits, *caches, pos = batched.decode(model, *w, token, pos, *caches)
            token = logits.argmax(-1).to(torch.int32)
    assert len(caches) == 2 * model.config.layers and caches[0].shape == batched.cache_shape(model, 3)
    for b, p in enumerate(prompts):
        want = model.generate_ids([int(t) for t in p], steps)
        assert got[b][:len(want)] == want, f"sequence {b}"


def test_batched_decode_compiles_and_matches_pytorch(tmp_path, monkeypatch):
    """The batched decode step exported at B = 2 and compiled for this CPU by IREE gives
    PyTorch's logits and caches."""
    from agentc.bench.timing import Device
    from agentc.build.iree_compile import compile_module
    from agentc.devices import KINDS
    from agentc.models import batched
    from agentc.models.export import export_function

    model = _model(tmp_path, monkeypatch, name="test-batched-llama-iree")
    rng = np.random.default_rng(1)
    weights = [np.array(a) for a in model.all_group.values()]
    shape = batched.cache_shape(model, 2)
    args = [*weights, np.array([7, 300], np.int32), np.array([3, 17], np.int32),
            *[rng.standard_normal(shape).astype(np.float32) for _ in range(2 * model.config.layers)]]
    text = export_function(lambda *a: batched.decode(model, *a), args, "decode_b2", list(model.all_group),
                           {"test": "batched-decode", "model": model.config.name})
    kind = KINDS["cpu"]
    vmfb, _ = compile_module(text, kind.target, kind.compile_flags, "cpu")
    dev = Device(kind.driver, kind.staged_readback)
    try:
        out = dev.load(vmfb, "decode_b2")(*[dev.upload(a) for a in args])
        got = [dev.readback(o) for o in out]
        del out  # device arrays go before their device
    finally:
        dev.close()
    with torch.no_grad():
        want = batched.decode(model, *[torch.from_numpy(a) for a in args])
    for g, wnt in zip(got, want):
        np.testing.assert_allclose(g, wnt.numpy(), rtol=1e-4, atol=1e-4)


def test_bench_batching_artifacts_measure_where_only_iree_is(tmp_path, monkeypatch, capsys):
    """`agentc bench batching --target T --artifacts DIR` writes modules and a manifest that
    `python -m agentc.bench.batching_run DIR` measures with numpy and the IREE runtime alone:
    integer inputs travel as they were made (token ids, positions, lengths), a model's
    weights are named once and shared across batch sizes, and every operator gets a time per
    batch and its speedup. (Compiled for this CPU here, with a 2-layer model.)"""
    import json
    import subprocess
    import sys

    from agentc.bench import batching
    from agentc.models import registry

    model = _model(tmp_path, monkeypatch, name="test-batched-bench")
    monkeypatch.setattr(batching, "LLM", "test-batched-bench@12x24")
    monkeypatch.setattr(batching, "BATCHES", (1, 2))
    try:
        made = {b: batching._kernels(b, True) for b in (1, 2)}
        art = batching.compile_artifacts("cpu", tmp_path / "art", quick=True)
    finally:
        registry.decoder.cache_clear()
    manifest = json.loads((art / "manifest.json").read_text())
    entries = {(e["name"], e["batch"]): e for e in manifest["kernels"]}
    assert set(entries) == {(n, b) for b in (1, 2) for n in made[b]}
    decode = entries[("llm_decode_step", 2)]["inputs"]
    n_w = len(model.all_group)
    pos = made[2]["llm_decode_step"].args[n_w + 1]  # weights, tokens, positions, then the caches
    assert decode[n_w + 1]["values"] == pos.tolist()
    weights = [s["weight"] for s in decode if "weight" in s]
    assert len(weights) == len(model.all_group)
    assert weights == [s["weight"] for s in entries[("llm_prefill", 1)]["inputs"] if "weight" in s]
    out = tmp_path / "out"
    run = subprocess.run([sys.executable, "-m", "agentc.bench.batching_run", str(art), "--out", str(out),
                          "--budget", "0.02"], capture_output=True, text=True, check=True)
    record = json.loads((out / "summary.json").read_text())
    for name in made[1]:
        assert set(record["results"][name]) == {"1", "2"}
        assert record["results"][name]["1"]["speedup"] == 1.0
        assert f"{name}_speedup_b2=" in run.stdout
