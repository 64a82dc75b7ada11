"""Generation on the device (`decode_chunk`): N decode steps, token choices and end-of-turn
in one call give what transformers' generate gives and what a call per step gives, and
stop exactly where generation ends (a tiny random Llama whose end-of-turn token is one its
greedy generation reaches)."""

from __future__ import annotations

import json
import textwrap
import warnings

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
from agentc.models.hf import random_checkpoint

QUERY = "Explain in one sentence what a compiler does."
STEPS = 16
SEP = "\n--\n"


def _greedy(model_dir, ids, eos: int) -> list[int]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = transformers.AutoModelForCausalLM.from_pretrained(model_dir).eval()
    with torch.no_grad():
        out = model.generate(torch.tensor([ids]), max_new_tokens=STEPS, do_sample=False, eos_token_id=eos,
                             pad_token_id=eos, attention_mask=torch.ones(1, len(ids), dtype=torch.long))
    return out[0, len(ids):].tolist()


def test_chunked_generation_equals_generate_and_stops_where_it_does(tmp_path):
    import agentc
    from agentc.models import registry
    from agentc.runtime.host_ops import SKIPPED

    base = random_checkpoint.write("llama", tmp_path / "base")
    dec = registry.decoder(str(base))
    ids = dec.chat_ids(QUERY)
    free = _greedy(base, ids, eos=dec.eos)
    assert len(free) == STEPS and dec.eos not in free
    # End-of-turn becomes the 6th token (its first occurrence): the same weights stop there.
    at = next(i for i in range(5, STEPS - 4) if free[i] not in free[:i])
    model_dir = random_checkpoint.write("llama", tmp_path / "eos", eos_token_id=free[at])
    want = _greedy(model_dir, ids, eos=free[at])
    eos_name = registry.decoder(str(model_dir)).config.name
    assert want[-1] == free[at] and len(want) == at + 1 < STEPS
    m = repr(str(model_dir))
    sampled = "temperature=1.3, top_k=30, top_p=0.9, seed=7"
    stop = registry.decoder(str(base)).detokenize(free)[8:11]
    (tmp_path / "graph.py").write_text(textwrap.dedent(f"""
        import agentc

        @agentc.agent(sla_ms=5000)
        def chat(query):
            outs = [agentc.llm(query, model={m}, max_tokens={STEPS}, decode_chunk=4, name="a"),
                    agentc.llm(query, model={m}, max_tokens={STEPS}, decode_chunk=1, name="b"),
                    agentc.llm(query, model={str(base)!r}, max_tokens=15, decode_chunk=4, {sampled}, name="c"),
                    agentc.llm(query, model={str(base)!r}, max_tokens=15, decode_chunk=1, {sampled}, name="d"),
                    agentc.llm(query, model={str(base)!r}, max_tokens={STEPS}, decode_chunk=3, stop={stop!r}, name="e"),
                    agentc.llm(query, model={str(base)!r}, max_tokens={STEPS}, decode_chunk=1, stop={stop!r}, name="f"),
                    agentc.llm(query, model={str(base)!r}, max_tokens={STEPS}, decode_chunk=5, name="g")]
            return agentc.join(outs, {SEP!r})
        """))
    placement = agentc.compile(str(tmp_path / "graph.py"), str(tmp_path / "build"), devices=["cpu"], quiet=True)
    manifest = json.loads((placement.build_dir / "manifest.json").read_text())
    assert manifest["precision"] == {"compute": "float32", "weights": {dec.config.name: "float32",
                                                                      eos_name: "float32"}}
    later = ["a/decode9x4", "a/decode13x3"]  # 15 decode steps: 4 + 4 + 4 + 3
    with agentc.load(placement.build_dir) as s:
        out = s.run({"query": QUERY}, fetch=["a/decode5x4", *later])
    a, b, c, d, e, f, g = out["outputs"][0].split(SEP)
    eos_dec = registry.decoder(str(model_dir))
    assert a == b == eos_dec.detokenize(want) and len(a) > 5
    # The chunk that sampled end-of-turn (steps 5-8) ran; the host stopped before the next.
    assert out["values"]["a/decode5x4"] is not SKIPPED
    assert all(out["values"][name] is SKIPPED for name in later)
    assert c == d and c != dec.detokenize(free)  # seeded sampling, the same draws per step
    assert e == f and stop not in e and len(e) < len(dec.detokenize(free))
    assert g == dec.detokenize(free)  # 15 decode steps: chunks of 5, 5, 5


def test_chunk_kernel_runs_its_steps_on_the_device():
    """The chunk is one function whose loop holds the step: the cost model counts its trips."""
    from torch_mlir import ir

    from agentc.cost.roofline import func_work
    from agentc.ir import context
    from agentc.models import kernels

    step = next(k for k in kernels.decoder_kernels("tiny-lm", "step") if k.symbol.endswith("__decode"))
    chunk = kernels.chunk_kernel("tiny-lm", step, 4)
    with context():
        funcs = {}
        for k, name in ((step, step.impl_name), (chunk, chunk.impl_name)):
            module = ir.Module.parse(k.impl_text)
            funcs[name] = ir.SymbolTable(module.operation)[name]
            funcs[name + "/module"] = module
            assert [o.operation.name for o in module.body.operations].count("func.func") == 1
        one, four = func_work(funcs[step.impl_name]), func_work(funcs[chunk.impl_name])
    # Four steps plus four token choices (a reduction over the vocabulary each).
    assert 4 * one.flops < four.flops < 4.1 * one.flops
    assert four.dispatches >= 4 * one.dispatches
    assert "scf.for" in chunk.impl_text


@pytest.mark.parametrize("call, message", [
    ("decode_chunk=0", "decode_chunk must be in 1..8, got 0"),
    ("decode_chunk=2.5", "decode_chunk must be a whole number"),
    ("decode_chunk=4, granularity='layer'", "decode_chunk needs granularity 'step'"),
])
def test_bad_decode_chunk_is_one_line_naming_the_line(tmp_path, call, message):
    import agentc
    from agentc.frontend.graph import AgentError

    (tmp_path / "graph.py").write_text(textwrap.dedent(f"""
        import agentc

        @agentc.agent(sla_ms=5000)
        def chat(query):
            return agentc.llm(query, model="tiny-lm", max_tokens=8, {call})
        """))
    with pytest.raises(AgentError) as e:
        agentc.compile(str(tmp_path / "graph.py"), str(tmp_path / "build"), devices=["cpu"], quiet=True)
    assert message in str(e.value) and "graph.py:6" in str(e.value) and "\n" not in str(e.value)


def test_chunk_choice_trades_round_trips_against_a_step():
    from agentc.cost.decode_chunk import choose

    # A 2 ms step behind a 3 ms round trip: 30 steps bring the round trip to 5% of a step.
    assert choose(step_s=0.002, sync_s=0.003, steps=31) == 30
    assert choose(step_s=0.002, sync_s=0.003, steps=12) == 12  # no longer than the generation
    assert choose(step_s=0.002, sync_s=0.003, steps=31, gap_s=0.02) == 10  # streamed every 20 ms
    assert choose(step_s=0.030, sync_s=0.0002, steps=31) == 1  # a slow step: the round trip is lost in it
    assert choose(step_s=0.030, sync_s=0.0, steps=31) == 1


def test_compiler_chunks_decode_where_the_device_round_trip_is_costly(tmp_path):
    """With no decode_chunk given, the chunk follows the device's `sync_s` in the catalog."""
    import agentc
    from agentc.cost.catalog import CATALOG_PATH

    (tmp_path / "graph.py").write_text(textwrap.dedent("""
        import agentc

        @agentc.agent(sla_ms=5000)
        def chat(query):
            return agentc.llm(query, model="tiny-lm", max_tokens=12, name="a")
        """))
    chunks = {}
    for sync in (0.0, 0.05):
        catalog = tmp_path / f"catalog{sync}.yaml"
        text = CATALOG_PATH.read_text().replace("profile: profiles/", f"profile: {CATALOG_PATH.parent}/profiles/")
        text = "".join(ln for ln in text.splitlines(keepends=True) if not ln.startswith("    sync_s:"))
        catalog.write_text(text.replace("    memory_space: host\n", f"    memory_space: host\n    sync_s: {sync}\n", 1))
        placement = agentc.compile(str(tmp_path / "graph.py"), str(tmp_path / f"build{sync}"), devices=["cpu"],
                                   catalog=str(catalog), quiet=True)
        chunks[sync] = [op.name for op in placement.ops if op.name.startswith("a/decode")]
    assert chunks[0.0] == [f"a/decode{i}" for i in range(1, 12)]
    assert chunks[0.05] == ["a/decode1x11"]  # a tiny step behind a 50 ms round trip: one call
