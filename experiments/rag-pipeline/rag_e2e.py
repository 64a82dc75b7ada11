"""RAG end to end on this machine's CPU: agentc vs the same pipeline written without it.

Both sides run the same models, corpus, prompts and greedy decoding:
  eager:  sentence-transformers (all-MiniLM-L6-v2) embeds the question, NumPy top-3 over
          the passage embeddings, transformers' SmolLM2-135M-Instruct (PyTorch eager)
          `generate(max_new_tokens=N, do_sample=False)` on the chat-templated prompt;
  agentc: examples/rag_agent_real.py compiled for `cpu` and run by `agentc.load(...).run`.
Each side lives in its own worker process (so peak memory is its own); the parent sends
them the same requests alternately, one at a time, so both see the same machine load.

Reports the median time per request, decode tokens/s (eager: from per-step timestamps of
generate; agentc: from the runtime trace, first to last sampled token), peak RSS of each
worker, and whether the answers agree. The last line is `speedup_vs_eager=X.XX`
(median eager / median agentc).

    python experiments/rag-pipeline/rag_e2e.py --requests 20 [--granularity auto|layer|step] [--json out.json]
        [--cpu-driver local-sync]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import resource
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "rag_agent_real.py"
CORPUS = ROOT / "examples" / "knowledge.txt"
TEMPLATE = ("Use the context to answer the question in one or two sentences.\n"
            "Context:\n{ctx}\n\nQuestion: {q}")  # the prompt of examples/rag_agent_real.py
QUESTIONS = [
    "Where does the Rhine flow?", "Who painted The Starry Night, and where?", "Why does ice float on water?",
    "How many keys does a piano have?", "What does the office cat of the agentc lab do in the afternoon?",
    "How deep is Lake Baikal?", "What causes ocean tides?", "Who invented the World Wide Web?",
    "How do bats find insects in the dark?", "What is a key-value cache in a language model?",
    "How does bread rise?", "When did women in New Zealand win the right to vote?",
    "What is the Rosetta Stone?", "How long is a marathon?", "What does the liver do?",
    "How do vaccines work?", "Why is Venus so hot?", "What is compound interest?",
    "How does GPS find a position?", "What did Marie Curie win?", "How are hurricanes and typhoons related?",
    "What is retrieval-augmented generation?", "How tall is the Burj Khalifa?", "What is kimchi made of?",
]


def _rss_peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# -- workers ----------------------------------------------------------------------------------
def eager_worker(conn, max_tokens: int, threads: int):
    os.environ["TQDM_DISABLE"] = "1"
    import warnings

    import numpy as np
    import torch
    from sentence_transformers import SentenceTransformer
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    from agentc.models import assets

    warnings.simplefilter("ignore")
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    torch.set_num_threads(threads)
    t0 = time.perf_counter()
    st = SentenceTransformer(str(assets.minilm_dir()), device="cpu")
    gguf = assets.smollm2_gguf()
    tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32).eval()
    passages = [ln.strip() for ln in CORPUS.read_text().splitlines() if ln.strip()]
    corpus = st.encode(passages, convert_to_numpy=True, normalize_embeddings=True)  # offline index build
    load_s = time.perf_counter() - t0

    def answer(q):
        qv = st.encode([q], convert_to_numpy=True, normalize_embeddings=True)
        top = np.argsort(-(corpus @ qv[0]), kind="stable")[:3]
        context = "\n".join(passages[i] for i in top)
        ids = tok.apply_chat_template([{"role": "user", "content": TEMPLATE.format(ctx=context, q=q)}],
                                      add_generation_prompt=True, return_tensors="pt", return_dict=True)
        processors, stamps = token_stamps()
        with torch.no_grad():
            out = model.generate(**ids, max_new_tokens=max_tokens, do_sample=False, logits_processor=processors)
        new = out[0, ids["input_ids"].shape[1]:]
        return context, tok.decode(new, skip_special_tokens=True), stamps, len(new), ids["input_ids"].shape[1]

    answer(QUESTIONS[0])  # warm-up
    conn.send({"ready": True, "load_s": load_s, "rss_mb": _rss_peak_mb()})
    while (q := conn.recv()) is not None:
        t = time.perf_counter()
        context, text, stamps, n, prompt_tokens = answer(q)
        total = time.perf_counter() - t
        decode_s = stamps[-1] - stamps[0] if len(stamps) > 1 else float("nan")
        conn.send({"s": total, "answer": text.strip(), "context": context, "decode_steps": len(stamps) - 1,
                   "decode_s": decode_s, "tokens": n, "prompt_tokens": prompt_tokens})
    conn.send({"rss_mb": _rss_peak_mb()})


def token_stamps():
    """(logits processors for `generate`, the list they fill): one perf_counter time per
    generated token, taken after its forward pass. transformers is imported here, so that
    importing this module (experiments/rag-pipeline/gpu_models.py does) needs no transformers."""
    from transformers import LogitsProcessor, LogitsProcessorList

    times: list[float] = []

    class Stamps(LogitsProcessor):
        def __call__(self, input_ids, scores):
            times.append(time.perf_counter())
            return scores

    return LogitsProcessorList([Stamps()]), times


def _agentc_env(max_tokens: int, granularity: str) -> None:
    if granularity == "auto":  # the compiler's choice: per step, as the build has one device
        os.environ.pop("AGENTC_LLM_GRANULARITY", None)
    else:
        os.environ["AGENTC_LLM_GRANULARITY"] = granularity  # read by the example when it is traced
    os.environ["AGENTC_MAX_TOKENS"] = str(max_tokens)


def agentc_compile(conn, max_tokens: int, granularity: str, build: str):
    """Compile in a process of its own, so the serving worker's peak memory is its own."""
    _agentc_env(max_tokens, granularity)
    import agentc

    t0 = time.perf_counter()
    placement = agentc.compile(str(EXAMPLE), build, devices=["cpu"], quiet=True)
    conn.send({"compile_s": time.perf_counter() - t0, "ops": len(placement.ops), "build": str(placement.build_dir)})


def agentc_worker(conn, max_tokens: int, granularity: str, build: str, cpu_driver: str | None):
    """The agentc runtime on the build (what users run), optionally on another HAL driver."""
    _agentc_env(max_tokens, granularity)
    t0 = time.perf_counter()
    import agentc

    session = agentc.load(build, drivers={"cpu": cpu_driver} if cpu_driver else None)

    def run(q):
        n_before = session.trace.added
        outs = session.run({"query": q})["outputs"]
        return outs, [(e[1], e[4]) for e in session.trace.since(n_before)]
    load_s = time.perf_counter() - t0
    run(QUESTIONS[0])  # warm-up
    conn.send({"ready": True, "load_s": load_s, "rss_mb": _rss_peak_mb()})
    while (q := conn.recv()) is not None:
        t = time.perf_counter()
        (context, text), events = run(q)
        total = time.perf_counter() - t
        samples = sorted(t1 for name, t1 in events if name.startswith("answer/sample"))
        decode_s = samples[-1] - samples[0] if len(samples) > 1 else float("nan")
        conn.send({"s": total, "answer": text.strip(), "context": context, "decode_steps": len(samples) - 1,
                   "decode_s": decode_s})
    conn.send({"rss_mb": _rss_peak_mb()})


# -- driver -------------------------------------------------------------------------------------
def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--requests", type=int, default=20)
    p.add_argument("--max-tokens", type=int, default=32)
    p.add_argument("--granularity", choices=("auto", "layer", "step"), default="auto")
    p.add_argument("--threads", type=int, default=os.cpu_count(), help="PyTorch threads (default: all cores)")
    p.add_argument("--cpu-driver", help="HAL driver for the cpu device instead of local-task (e.g. local-sync)")
    p.add_argument("--build", default=str(ROOT / "build" / "bench_rag_e2e"))
    p.add_argument("--json", help="write all measurements here")
    args = p.parse_args(argv)

    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=agentc_compile, args=(child, args.max_tokens, args.granularity, args.build))
    proc.start()
    compiled = parent.recv()
    proc.join()
    print(f"agentc: compiled {compiled['ops']} operators in {compiled['compile_s']:.1f} s", file=sys.stderr, flush=True)
    workers = {}
    for name, target, wargs in (("eager", eager_worker, (args.max_tokens, args.threads)),
                                ("agentc", agentc_worker, (args.max_tokens, args.granularity, compiled["build"],
                                                           args.cpu_driver))):
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=target, args=(child, *wargs), daemon=True)
        proc.start()
        child.close()  # so that a worker's crash ends recv() instead of hanging it
        info = parent.recv()  # one at a time: loading both at once would skew the first requests
        workers[name] = (proc, parent, info)
        print(f"{name}: ready {json.dumps({k: round(v, 2) if isinstance(v, float) else v for k, v in info.items()})}",
              file=sys.stderr, flush=True)

    questions = [QUESTIONS[i % len(QUESTIONS)] for i in range(args.requests)]
    load_before = os.getloadavg()[0]
    results = {"eager": [], "agentc": []}
    for i, q in enumerate(questions):
        order = ("eager", "agentc") if i % 2 == 0 else ("agentc", "eager")
        for name in order:
            _, conn, _ = workers[name]
            conn.send(q)
            results[name].append(conn.recv())
        e, a = results["eager"][-1], results["agentc"][-1]
        print(f"[{i + 1:2d}/{len(questions)}] eager {e['s'] * 1e3:7.0f} ms  agentc {a['s'] * 1e3:7.0f} ms  "
              f"same answer: {e['answer'] == a['answer']}", file=sys.stderr, flush=True)
    peaks = {}
    for name, (proc, conn, _) in workers.items():
        conn.send(None)
        peaks[name] = conn.recv()["rss_mb"]
        proc.join(timeout=60)

    def summary(rs):
        return {"median_ms": statistics.median(r["s"] for r in rs) * 1e3,
                "decode_tok_s": statistics.median(r["decode_steps"] / r["decode_s"] for r in rs if r["decode_steps"] > 0)}

    eager, agentc_ = summary(results["eager"]), summary(results["agentc"])
    same = sum(e["answer"] == a["answer"] for e, a in zip(results["eager"], results["agentc"]))
    same_ctx = sum(e["context"] == a["context"] for e, a in zip(results["eager"], results["agentc"]))
    early = sum(r["tokens"] < args.max_tokens for r in results["eager"])
    early_agentc = sum(r["decode_steps"] < args.max_tokens - 1 for r in results["agentc"])
    print(f"requests: {len(questions)} x 2, max_tokens={args.max_tokens}, granularity={args.granularity}, "
          f"agentc operators per request: {compiled['ops']}, cpu driver "
          f"{args.cpu_driver or 'local-task'}, torch threads: {args.threads}, "
          f"load average {load_before:.1f} -> {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"eager  : median {eager['median_ms']:7.0f} ms/request, decode {eager['decode_tok_s']:5.1f} tok/s, "
          f"peak RSS {peaks['eager']:6.0f} MB (load {workers['eager'][2]['load_s']:.1f} s)")
    print(f"agentc : median {agentc_['median_ms']:7.0f} ms/request, decode {agentc_['decode_tok_s']:5.1f} tok/s, "
          f"peak RSS {peaks['agentc']:6.0f} MB (compile {compiled['compile_s']:.1f} s, "
          f"load {workers['agentc'][2]['load_s']:.1f} s)")
    print(f"same retrieved passages: {same_ctx}/{len(questions)}; same answers: {same}/{len(questions)}; "
          f"stopped at end-of-turn before {args.max_tokens} tokens: eager in {early}, agentc in {early_agentc} requests")
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "eager": eager, "agentc": agentc_, "peak_rss_mb": peaks,
                                               "results": results}, indent=1))
    print(f"speedup_vs_eager={eager['median_ms'] / agentc_['median_ms']:.2f}")


if __name__ == "__main__":
    main()
