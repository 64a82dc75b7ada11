"""`agentc bench decode`: how fast agentc generates on this machine's CPU, beside llama.cpp
on the same GGUF file and beside PyTorch eager, and what the cost model predicted.

Protocol: SmolLM2-135M-Instruct (the packaged Q4_1 GGUF; agentc's decode step streams its
Q4_1/Q8_0 blocks through agentc.cpu_kernels where this machine can build them, else float32),
batch 1, greedy, a prompt of PROMPT_TOKENS tokens through the chat template, TOKENS new
tokens (the prompt asks for a long answer; the count generated is recorded), the median of
`--runs` (>= 5) requests after a warm-up, the three systems interleaved request by request.
agentc runs in several builds that differ only in decode steps per device call
(`decode_chunk`: 1 is a call per step; `auto` is the compiler's choice).

Per system: prefill (prompt in, first token out) in ms, and decode tokens/s (the tokens
after the first over the time from the first to the last). For agentc also the predicted
prefill and decode (the plan's schedule) and host syncs per token.

llama.cpp is llama-cpp-python==0.3.36 with n_threads=2, built from source by this
benchmark's own set-up on first use (~8 minutes), not by the README's.
Last lines: `decode_vs_llamacpp=X.XX` (agentc's best build / llama.cpp, tokens/s),
`decode_vs_eager=X.XX`, `prefill_vs_llamacpp=X.XX` (llama.cpp ms / agentc ms).
"""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from agentc.bench.progress import Progress

LLM = "smollm2-135m"
PROMPT_TOKENS = 160
TOKENS = 32
CHUNKS = ("1", "auto", "8", "31")
LLAMACPP = "llama-cpp-python==0.3.36"
STORY = ("Write a long, detailed story about a lighthouse keeper who finds a message in a bottle. Describe the "
         "storm, the island, the keeper's daily routine, the old lamp, the gulls, the supply boat, the letters "
         "from the mainland, the strange handwriting, the journey it starts, and what the keeper learns about "
         "the sender, the sea and himself. Use many sentences and vivid details about the sounds, the light, "
         "the salt, the wind, the rocks, the ropes, the tides, the winter nights, the long summer evenings, "
         "the visitors, the radio, the maps, the charts, the weather log, the kettle and the stairs. ")


def _prompt(dec) -> str:
    """A prompt whose chat-template ids number PROMPT_TOKENS (words dropped from the end
    of a long request until it fits, then padded with single-token words)."""
    words = (STORY * 4).split()
    while len(dec.chat_ids(" ".join(words))) > PROMPT_TOKENS:
        words.pop()
    while len(dec.chat_ids(" ".join(words))) < PROMPT_TOKENS:
        words.append("and")
    text = " ".join(words)
    if len(dec.chat_ids(text)) != PROMPT_TOKENS:
        raise RuntimeError(f"no prompt of exactly {PROMPT_TOKENS} tokens found (got {len(dec.chat_ids(text))})")
    return text


def _graph(path: Path, chunk: str) -> Path:
    arg = "" if chunk == "auto" else f", decode_chunk={int(chunk)}"
    path.write_text(textwrap.dedent(f"""
        import agentc

        @agentc.agent(sla_ms=60000)
        def answer(prompt):
            return agentc.llm(prompt, model={LLM!r}, max_tokens={TOKENS}, name="answer", granularity="step",
                              prompt_len=192, cache_len=256{arg})
        """))
    return path


CHUNK = re.compile(r"answer/decode\d+x(\d+)")  # a decode chunk's operator and its steps
STEP_SAMPLE = re.compile(r"answer/sample[1-9]\d*")  # a call per step's token after the first


def token_ends(events) -> tuple[float, float, int, int]:
    """(first token's end, last token's end, tokens after the first, host syncs) of the
    `answer` LLM from a request's trace events (track, name, request, start, end, note):
    sample<i> is one token, decode<i>x<m> m tokens. A call per step syncs once per token
    (the end-of-turn check reads it), a chunk once."""
    first = next(e for _, name, _, _, e, _ in events if name == "answer/sample0")
    ends, tokens, syncs = [first], 0, 0
    for _, name, _, _, e, _ in events:
        m = CHUNK.fullmatch(name)
        if m or STEP_SAMPLE.fullmatch(name):
            ends.append(e)
            tokens, syncs = tokens + (int(m.group(1)) if m else 1), syncs + 1
    return first, max(ends), tokens, syncs


def _predicted(plan: dict) -> tuple[float, float]:
    """(prefill s, decode s) in the plan's schedule, measured as the trace is."""
    ops = {op["name"]: op for op in plan["ops"]}
    first = ops["answer/sample0"]["end"]
    last = max(op["end"] for op in plan["ops"] if op["name"].startswith(("answer/sample", "answer/decode")))
    return first - ops["answer/prefill"]["start"], last - first


# /proc/cpuinfo flag -> the ggml option that builds for it
GGML_ISA = {"avx": "AVX", "avx2": "AVX2", "fma": "FMA", "f16c": "F16C", "bmi2": "BMI2", "avx512f": "AVX512",
            "avx512vbmi": "AVX512_VBMI", "avx512_vnni": "AVX512_VNNI", "avx512_bf16": "AVX512_BF16",
            "avx_vnni": "AVX_VNNI"}


def llamacpp_cmake_args(flags: set[str]) -> str:
    """llama.cpp built for the instruction sets the CPU lists, AMX excepted: a CPU may list
    AMX yet fault on its tile instructions (this machine's virtual CPU does: SIGILL on
    tileloadd in ggml's AMX matmul), and GGML_NATIVE turns AMX on wherever it is listed."""
    on = " ".join(f"-DGGML_{opt}=ON" for flag, opt in GGML_ISA.items() if flag in flags)
    return f"-DGGML_NATIVE=OFF {on} -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF"


def _cpu_flags() -> set[str]:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def _ensure_llamacpp(progress_note) -> bool:
    try:
        import llama_cpp  # noqa: F401
        return True
    except ImportError:
        pass
    progress_note(f"installing {LLAMACPP} (builds llama.cpp from source, ~8 minutes on 2 cores)")
    env = dict(os.environ, CMAKE_ARGS=os.environ.get("CMAKE_ARGS", llamacpp_cmake_args(_cpu_flags())))
    done = subprocess.run([sys.executable, "-m", "pip", "install", "--no-cache-dir", LLAMACPP], env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=False)
    if done.returncode != 0:
        progress_note(f"{LLAMACPP} did not install: {done.stderr.strip().splitlines()[-1:]}")
        return False
    return True


class _LlamaCpp:
    def __init__(self, gguf: Path):
        from llama_cpp import Llama

        self.llm = Llama(model_path=str(gguf), n_ctx=512, n_threads=2, n_threads_batch=2, n_batch=512,
                         verbose=False)

    def request(self, ids: list[int]) -> dict:
        """Greedy from the prompt ids: prefill to the first token, then TOKENS - 1 more,
        end-of-turn ignored (as the protocol counts a fixed number of tokens)."""
        self.llm.reset()
        t0 = time.perf_counter()
        out, stamps = [], []
        for tok in self.llm.generate(ids, top_k=1, temp=0.0, reset=True):
            stamps.append(time.perf_counter())
            out.append(int(tok))
            if len(out) == TOKENS:
                break
        return {"prefill_s": stamps[0] - t0, "decode_s": stamps[-1] - stamps[0], "tokens": len(out) - 1, "ids": out}


class _Eager:
    def __init__(self, dec):
        from transformers import LogitsProcessor, LogitsProcessorList

        self.model, self.eos = dec.reference_model, sorted(dec.eos_ids)
        self.stamps: list[float] = []
        stamps = self.stamps

        class Stamp(LogitsProcessor):
            def __call__(self, input_ids, scores):
                stamps.append(time.perf_counter())
                return scores

        self.processors = LogitsProcessorList([Stamp()])

    def request(self, ids: list[int]) -> dict:
        import torch

        self.stamps.clear()
        t0 = time.perf_counter()
        with torch.no_grad():
            out = self.model.generate(torch.tensor([ids]), max_new_tokens=TOKENS, do_sample=False, eos_token_id=self.eos,
                                      pad_token_id=self.eos[0], logits_processor=self.processors,
                                      attention_mask=torch.ones(1, len(ids), dtype=torch.long))
        s = self.stamps
        return {"prefill_s": s[0] - t0, "decode_s": s[-1] - s[0], "tokens": len(s) - 1,
                "ids": out[0, len(ids):].tolist()}


def _agentc_request(session, prompt: str) -> dict:
    n = session.trace.added
    text = session.run({"prompt": prompt})["outputs"][0]
    events = session.trace.since(n)
    start = next(s for _, name, _, s, _, _ in events if name == "answer/prefill")
    first, last, tokens, syncs = token_ends(events)
    return {"prefill_s": first - start, "decode_s": last - first, "tokens": tokens, "syncs": syncs, "text": text}


def run(args, out: Path):
    import tempfile

    import agentc
    from agentc.models import assets, registry

    runs = max(5, int(getattr(args, "runs", 5) or 5))
    dec = registry.decoder(LLM)
    prompt = _prompt(dec)
    ids = dec.chat_ids(prompt)
    progress = Progress(len(CHUNKS) + 2 + runs, "decode", enabled=not getattr(args, "quiet", False))
    note = (lambda m: print(f"[decode] {m}", file=sys.stderr, flush=True))
    systems, builds = {}, {}
    with tempfile.TemporaryDirectory(prefix="agentc-decode-") as tmp:
        for chunk in CHUNKS:
            t0 = time.perf_counter()
            placement = agentc.compile(str(_graph(Path(tmp) / f"graph{chunk}.py", chunk)), str(Path(tmp) / chunk),
                                       devices=["cpu"], quiet=True)
            plan = placement.build_dir / "plan.json"
            builds[chunk] = {"compile_s": round(time.perf_counter() - t0, 1),
                             "predicted": _predicted(json.loads(plan.read_text())),
                             "chunk": max((int(m.group(1)) for op in placement.ops if (m := CHUNK.fullmatch(op.name))),
                                          default=1),
                             "weights": json.loads((placement.build_dir / "manifest.json").read_text())
                             ["precision"]["weights"][LLM]}
            systems[f"agentc decode_chunk={chunk}"] = agentc.load(placement.build_dir)
            progress.step(f"compiled decode_chunk={chunk} ({builds[chunk]['chunk']} per call)")
        if _ensure_llamacpp(note):
            systems["llama.cpp"] = _LlamaCpp(assets.smollm2_gguf())
        progress.step("llama.cpp")
        systems["pytorch eager"] = _Eager(dec)
        progress.step("eager")
        load_before = os.getloadavg()
        samples = {name: [] for name in systems}
        for i in range(runs + 1):  # the first round warms up
            for name in (list(systems) if i % 2 == 0 else list(systems)[::-1]):
                s = systems[name]
                r = _agentc_request(s, prompt) if name.startswith("agentc") else s.request(ids)
                if i:
                    samples[name].append(r)
            if i:
                progress.step(f"round {i}/{runs}")
        load_after = os.getloadavg()
        outputs = {name: rs[0].get("text") or dec.detokenize(rs[0]["ids"]) for name, rs in samples.items()}
        for name, s in systems.items():
            if name.startswith("agentc"):
                s.close()
    results = []
    for name, rs in samples.items():
        row = {"system": name, "prefill_ms": round(statistics.median(r["prefill_s"] for r in rs) * 1e3, 2),
               "decode_tok_s": round(statistics.median(r["tokens"] / r["decode_s"] for r in rs), 2),
               "tokens": 1 + rs[0]["tokens"], "output": outputs[name][:200]}
        if name.startswith("agentc"):
            b = builds[name.split("=", 1)[1]]
            row.update(weights=b["weights"], tokens_per_call=b["chunk"], syncs_per_token=round(rs[0]["syncs"] / max(rs[0]["tokens"], 1), 3),
                       compile_s=b["compile_s"], predicted_prefill_ms=round(b["predicted"][0] * 1e3, 2),
                       predicted_decode_tok_s=round(rs[0]["tokens"] / b["predicted"][1], 2))
            row["decode_error_pct"] = round(100 * (row["predicted_decode_tok_s"] / row["decode_tok_s"] - 1), 1)
        results.append(row)
    ours = [r for r in results if r["system"].startswith("agentc")]
    best = max(ours, key=lambda r: r["decode_tok_s"])
    by = {r["system"]: r for r in results}
    summary = {"best_agentc": best["system"], "agentc_decode_tok_s": best["decode_tok_s"],
               "decode_vs_eager": round(best["decode_tok_s"] / by["pytorch eager"]["decode_tok_s"], 2)}
    if "llama.cpp" in by:
        summary["prefill_vs_llamacpp"] = round(by["llama.cpp"]["prefill_ms"] / best["prefill_ms"], 2)
        summary["decode_vs_llamacpp"] = round(best["decode_tok_s"] / by["llama.cpp"]["decode_tok_s"], 2)
    (out / "table.md").write_text(_table(results, load_before, load_after))
    params = {"model": LLM, "prompt_tokens": len(ids), "tokens": TOKENS, "runs": runs, "chunks": list(CHUNKS),
              "llamacpp": LLAMACPP, "load_during": [round(load_before[0], 2), round(load_after[0], 2)]}
    return params, results, summary


def _table(results: list[dict], before, after) -> str:
    head = ("| system | tokens/call | prefill ms | decode tok/s | predicted prefill ms | predicted tok/s "
            "| syncs/token | tokens |")
    lines = [f"Load average {before[0]:.2f} -> {after[0]:.2f}.", "", head, "|" + "---|" * 8]
    for r in results:
        lines.append(f"| {r['system']} | {r.get('tokens_per_call', '')} | {r['prefill_ms']} | {r['decode_tok_s']} | "
                     f"{r.get('predicted_prefill_ms', '')} | {r.get('predicted_decode_tok_s', '')} | "
                     f"{r.get('syncs_per_token', '')} | {r['tokens']} |")
    return "\n".join(lines) + "\n"
