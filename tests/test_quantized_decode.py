"""The quantized CPU decode path (agentc.cpu_kernels, agentc.models.split_linears) against
references: each kernel call against NumPy's product of the dequantized blocks; a build of a
random GGUF file (Q4_1 linears, a Q8_0 tied head, as llama.cpp's files are) against
transformers reading the same file; the on-device loop against a call per step; and, in the
slow tier, the packaged SmolLM2 GGUF's next tokens against transformers' on a fixed prompt
set (teacher-forced: both read the same text)."""

from __future__ import annotations

import json
import textwrap

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from agentc.cpu_kernels import objects

pytestmark = pytest.mark.skipif(objects.unavailable() is not None,
                                reason=f"no quantized CPU kernels here ({objects.unavailable()})")


def _blocks(form: str, n: int, k: int, rng):
    from agentc.cpu_kernels import blocks

    if form == "q4_1":
        q, d, m = blocks.quantize_q4_1((rng.standard_normal((n, k)) * 0.1).astype(np.float32))
        return blocks.pack_q4_1(q, d, m), blocks.dequantize("q4_1", q, d, m)
    q = rng.integers(-127, 128, (n, k // 32, 32)).astype(np.int8)
    d = (rng.random((n, k // 32)) * 0.01).astype(np.float32)
    return blocks.pack_q8_0(q, d), blocks.dequantize("q8_0", q, d, None)


@pytest.mark.parametrize("form,x_shape,rows,biased", [
    ("q4_1", (1, 1, 576), (64, 32, 96), (False, True, False)),  # a group of 16 blocks and a pair
    ("q8_0", (1, 1024), (200,), (False,)),  # two groups
    ("q4_1", (128,), (48, 16), (True, True)),  # pairs only
])
@pytest.mark.parametrize("variant,tol", [("exact", 1e-5), ("vnni", 2e-2)])
def test_kernel_call_equals_numpy(form, x_shape, rows, biased, variant, tol):
    from agentc.bench.timing import Device
    from agentc.build.iree_compile import compile_module
    from agentc.cpu_kernels.gemv import Gemv, definition
    from agentc.devices import KINDS

    rng = np.random.default_rng(0)
    g = Gemv(form, x_shape, rows, biased)
    args, w = _blocks(form, g.n, g.k, rng)
    x = rng.standard_normal(x_shape).astype(np.float32)
    bias = [rng.standard_normal(r).astype(np.float32) for r, b in zip(rows, biased) if b]
    names = [f"%a{i}" for i in range(len(g.arg_types()))]
    entry = (f"  func.func @main({', '.join(f'{a}: {t}' for a, t in zip(names, g.arg_types()))}) -> "
             f"({', '.join(g.result_types())}) {{\n    %r:{len(rows)} = func.call @{g.name}({', '.join(names)}) : "
             f"({', '.join(g.arg_types())}) -> ({', '.join(g.result_types())})\n"
             f"    return {', '.join(f'%r#{i}' for i in range(len(rows)))} : {', '.join(g.result_types())}\n  }}\n")
    text = definition(g, objects.object_file(variant)).rstrip()[:-1] + entry + "}\n"
    kind = KINDS["cpu"]
    dev = Device(kind.driver, kind.staged_readback)
    try:
        fn = dev.load(compile_module(text, kind.target, kind.compile_flags, "cpu")[0], "main")
        out = fn(*[dev.upload(a) for a in [*args, x, *bias]])
        got = [dev.readback(o) for o in (out if isinstance(out, (list, tuple)) else [out])]
        del out, fn  # device buffers go before their device
    finally:
        dev.close()
    want = w.astype(np.float64) @ x.reshape(-1).astype(np.float64)
    at, b = 0, iter(bias)
    for r, is_biased, y in zip(rows, biased, got):
        ref = want[at:at + r] + (next(b) if is_biased else 0)
        assert y.shape == (*x_shape[:-1], r)
        assert np.max(np.abs(y.reshape(-1) - ref)) <= tol * np.max(np.abs(ref)), (form, variant, r)
        at += r


def _graph(path, model_dir, max_tokens: int, chunks=(4, 1)):
    m = repr(str(model_dir))
    llms = ", ".join(f'agentc.llm(query, model={m}, max_tokens={max_tokens}, granularity="step", '
                     f'decode_chunk={c}, prompt_len=48, cache_len=64, name="g{c}")' for c in chunks)
    path.write_text(textwrap.dedent(f"""
        import agentc

        @agentc.agent(sla_ms=60000)
        def chat(query):
            return agentc.join([{llms}], "\\n--\\n")
    """))
    return path


def _teacher_forced(build, config, ids: list[int], cache_len: int) -> np.ndarray:
    """The build's decode step (a call per step, from an empty cache) fed `ids` one at a
    time: its logits after each, (len(ids), vocab)."""
    import agentc

    plan = json.loads((build / "plan.json").read_text())
    symbol = next(op["callee"] for op in plan["ops"] if op["name"].endswith("/decode1"))
    empty = np.zeros((1, config.kv_heads, cache_len, config.head_dim), np.float32)
    session = agentc.load(build)
    dev = session.devices["cpu"]

    def run():
        caches, out = [empty] * (2 * config.layers), []
        for pos, tok in enumerate(ids):
            res = dev.call(symbol, [np.array([tok], np.int32), np.array([pos], np.int32), *caches])
            caches = res[1:1 + 2 * config.layers]  # they stay on the device
            out.append(dev.kind.to_host(dev.device, res[0], {}).reshape(-1))
        return np.stack(out)

    try:
        return dev.on_thread(run)
    finally:
        session.close()


def _reference_logits(dec, ids: list[int]) -> np.ndarray:
    with torch.no_grad():
        return dec.reference_model(torch.tensor([ids])).logits[0].numpy()


def _compile(graph, out):
    import agentc

    agentc.compile(str(graph), str(out), devices=["cpu"], quiet=True)
    return out


QUERY = "Explain in one sentence what a compiler does."


@pytest.fixture(scope="module")
def tiny_gguf(tmp_path_factory):
    from agentc.models.hf import random_gguf

    return random_gguf.write(tmp_path_factory.mktemp("gguf") / "tiny")


def test_build_of_a_gguf_file_computes_what_transformers_does(tiny_gguf, tmp_path, monkeypatch):
    """With the kernels' exact variant (float activations), the quantized build's logits are
    transformers' on the dequantized file at every position, and its greedy text (on-device
    loop and a call per step alike) is transformers' generate."""
    from agentc.models import registry

    monkeypatch.setenv("AGENTC_CPU_KERNEL", "exact")
    build = _compile(_graph(tmp_path / "graph.py", tiny_gguf, 12), tmp_path / "build")
    manifest = json.loads((build / "manifest.json").read_text())
    dec = registry.decoder(str(tiny_gguf))
    assert manifest["precision"]["weights"][dec.config.name] == "float32+q4_1+q8_0"
    module = (build / "cpu.mlir").read_text()
    assert "agentc_gemv_q4_1_" in module and "agentc_gemv_q8_0_" in module  # the linears and the tied head
    import agentc

    session = agentc.load(build)
    try:
        texts = session.run({"query": QUERY})["outputs"][0].split("\n--\n")
    finally:
        session.close()
    want = dec.reference_generate(QUERY, 12)
    assert texts == [want, want]
    ids = dec.chat_ids(QUERY)
    got, ref = _teacher_forced(build, dec.config, ids, 64), _reference_logits(dec, ids)
    assert np.max(np.abs(got - ref)) <= 1e-4 * np.max(np.abs(ref))


def test_int8_activations_stay_close_and_the_loop_stops_where_steps_do(tiny_gguf, tmp_path):
    """The build as it ships (int8 activations, as llama.cpp computes): logits near
    transformers' at every position, and the on-device loop's text equal to a call per step's."""
    import agentc
    from agentc.models import registry

    build = _compile(_graph(tmp_path / "graph.py", tiny_gguf, 12), tmp_path / "build")
    session = agentc.load(build)
    try:
        chunked, stepped = session.run({"query": QUERY})["outputs"][0].split("\n--\n")
    finally:
        session.close()
    assert chunked == stepped
    dec = registry.decoder(str(tiny_gguf))
    ids = dec.chat_ids(QUERY)
    got, ref = _teacher_forced(build, dec.config, ids, 64), _reference_logits(dec, ids)
    err = np.max(np.abs(got - ref), axis=1) / np.max(np.abs(ref), axis=1)
    assert err.max() <= 0.1, err.max()
    assert err.max() > 1e-6  # the activations are quantized: not the exact variant


PROMPTS = ["Write one sentence about the sea at night.", "Which river flows through Basel?",
           "Name three things a lighthouse keeper does every day."]


@pytest.mark.slow
def test_packaged_gguf_next_tokens_agree_with_transformers(tmp_path):
    """SmolLM2-135M-Instruct's Q4_1 GGUF as agentc builds it: fed transformers' own greedy
    continuation (24 tokens) of each prompt, its next token equals transformers' at >= 90% of
    the positions (quantization moves some; a wrong kernel or block order moves nearly all)."""
    from agentc.models import registry

    graph = tmp_path / "graph.py"
    graph.write_text(textwrap.dedent("""
        import agentc

        @agentc.agent(sla_ms=60000)
        def chat(query):
            return agentc.llm(query, model="smollm2-135m", max_tokens=4, granularity="step", decode_chunk=1,
                              prompt_len=192, cache_len=256, name="g")
    """))
    build = _compile(graph, tmp_path / "build")
    dec = registry.decoder("smollm2-135m")
    same = total = 0
    for prompt in PROMPTS:
        ids = dec.chat_ids(prompt)
        cont = dec.generate_ids(ids, 24)
        seq = ids + cont
        got = _teacher_forced(build, dec.config, seq[:-1], 256)[len(ids) - 1:].argmax(-1)
        same += int(np.sum(got == np.array(cont)))
        total += len(cont)
    print(f"teacher-forced on transformers' text: next token equal at {same}/{total} positions")
    assert same >= 0.9 * total, f"{same}/{total}"


def test_without_the_kernels_a_gguf_build_stays_float32(tiny_gguf, tmp_path, monkeypatch):
    """A machine that cannot build the kernels (no gcc, no AVX-512 VNNI) compiles the same
    graph in float32: no kernel call in its module, and its text is transformers'."""
    import agentc
    from agentc.cpu_kernels import objects
    from agentc.models import registry

    monkeypatch.setattr(objects, "unavailable", lambda: "this CPU lacks avx512_vnni")
    build = _compile(_graph(tmp_path / "graph.py", tiny_gguf, 6, chunks=(1,)), tmp_path / "build")
    dec = registry.decoder(str(tiny_gguf))
    assert json.loads((build / "manifest.json").read_text())["precision"]["weights"][dec.config.name] == "float32"
    assert "agentc_gemv_" not in (build / "cpu.mlir").read_text()
    with agentc.load(build) as session:
        assert session.run({"query": QUERY})["outputs"][0] == dec.reference_generate(QUERY, 6)


def test_an_unknown_kernel_variant_is_one_line(tiny_gguf, tmp_path):
    from conftest import agentc_cli

    graph = _graph(tmp_path / "graph.py", tiny_gguf, 6, chunks=(1,))
    r = agentc_cli("compile", graph, "-o", tmp_path / "build", "--devices", "cpu", env={"AGENTC_CPU_KERNEL": "fast"})
    lines = [ln for ln in r.stderr.splitlines() if not ln.startswith("[agentc]")]  # (progress)
    want = "agentc: error: AGENTC_CPU_KERNEL='fast': expected one of vnni, exact, empty"
    assert r.returncode == 2 and lines == [want], r.stderr
