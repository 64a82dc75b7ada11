"""`agentc bench import`: what importing a Hugging Face checkpoint costs, per architecture.

For each supported architecture a seeded random checkpoint (SmolLM2-135M's shape for the
LLMs, all-MiniLM-L6-v2's for the encoders, and Qwen2.5-0.5B's shape in bfloat16 as the
large case) is written by transformers, then:
- compiled cold (`agentc compile` in a fresh process with an empty cache): wall time and
  the process's peak resident memory (wait4's ru_maxrss);
- run here, one request at a time: agentc's median per request beside transformers'
  eager PyTorch (`generate`, greedy, the same prompt ids and token count; for encoders
  sentence-transformers' `encode`), with a check that both give the same tokens (or the
  same embedding within 1e-4).
The anchor is PyTorch eager in the same process, measured side by side; `--quick` keeps
two LLMs and one encoder at tiny shapes.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import textwrap
import time
import warnings
from pathlib import Path

import numpy as np

from agentc.bench.progress import Progress
from agentc.models.hf import random_checkpoint as rc

QUERY = "Explain in one sentence what a compiler does, and why it matters."
TOKENS = 32


def _cases(quick: bool) -> list[dict]:
    if quick:
        return [{"case": "llama", "arch": "llama", "shape": rc.TINY}, {"case": "gpt2", "arch": "gpt2", "shape": rc.TINY},
                {"case": "bert", "arch": "bert", "shape": rc.Shape(vocab=30522, max_positions=128)}]
    out = [{"case": a, "arch": a, "shape": rc.SMOLLM2_135M, "extra": {"sliding_window": None} if a == "mistral" else {}}
           for a in rc.LLMS]
    out.append({"case": "qwen2.5-0.5b (bf16)", "arch": "qwen2", "shape": rc.QWEN25_05B, "dtype": "bfloat16"})
    out += [{"case": a, "arch": a, "shape": rc.MINILM_L6} for a in rc.ENCODERS]
    return out


def _graph(path: Path, model_dir: Path, llm: bool) -> Path:
    body = (f"return agentc.llm(query, model={str(model_dir)!r}, max_tokens={TOKENS}, name='answer')" if llm else
            f"return agentc.embed(agentc.tokenize(query, model={str(model_dir)!r}), model={str(model_dir)!r}, "
            f"name='vec')")
    path.write_text(textwrap.dedent(f"""
        import agentc

        @agentc.agent(sla_ms=60000)
        def main(query):
            {body}
        """))
    return path


def _cold_compile(graph: Path, out: Path, cache: Path) -> tuple[float, float]:
    """(seconds, peak RSS in GB) of `agentc compile` in a fresh process with an empty cache.
    The peak is the largest resident size of the compile's process tree (it and the
    iree-compile processes it starts), sampled every 50 ms: wait4's ru_maxrss would also
    count the pages a forked child shares with this (large) benchmark process."""
    env = dict(os.environ, AGENTC_CACHE=str(cache))
    t0 = time.perf_counter()
    p = subprocess.Popen([sys.executable, "-m", "agentc.cli", "compile", str(graph), "-o", str(out), "--devices", "cpu"],
                         env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    peak = 0
    while p.poll() is None:
        peak = max(peak, _tree_rss(p.pid))
        time.sleep(0.05)
    seconds = time.perf_counter() - t0
    err = p.stderr.read()
    p.stderr.close()
    if p.returncode != 0:
        raise RuntimeError(f"compile of {graph} failed: {err.strip().splitlines()[-1] if err.strip() else p.returncode}")
    return seconds, peak / 2**30


def _tree_rss(pid: int) -> int:
    """Resident bytes of `pid` and its descendants (0 for processes already gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        rss = next(int(line.split()[1]) * 1024 for line in status.splitlines() if line.startswith("VmRSS:"))
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except (OSError, StopIteration):
        return 0
    return rss + sum(_tree_rss(int(c)) for c in children)


def _median_s(fn, reps: int) -> float:
    """Median seconds of `reps` calls after one warm-up (first-use costs are not per-request)."""
    from agentc.bench.timing import repeat

    return repeat(fn, 0.0, min_reps=reps, max_reps=reps, warmup=1).median_s


def _llm_requests(build: Path, model_dir: Path, reps: int) -> dict:
    import torch

    import agentc
    from agentc.models import registry

    dec = registry.decoder(str(model_dir))
    ids = dec.chat_ids(QUERY)
    fetch = [f"answer/sample{i}" for i in range(TOKENS)]
    with agentc.load(build) as s:
        ours_s = _median_s(lambda: s.run({"query": QUERY}), reps)
        got = s.run({"query": QUERY}, fetch=fetch)["values"]
    ours = [int(got[f][0]) for f in fetch if f in got]
    ref_model = dec.reference_model
    prompt = torch.tensor([ids])

    def eager():
        with torch.no_grad():
            return ref_model.generate(prompt, max_new_tokens=TOKENS, do_sample=False, eos_token_id=sorted(dec.eos_ids),
                                      pad_token_id=dec.eos)

    eager_s = _median_s(eager, reps)
    ref = [int(t) for t in eager()[0, len(ids):]]
    return {"agentc_s": ours_s, "eager_s": eager_s, "tokens": len(ours), "prompt_tokens": len(ids),
            "same_output": ours == ref}


def _encoder_requests(build: Path, model_dir: Path, reps: int) -> dict:
    import agentc

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from sentence_transformers import SentenceTransformer

        st = SentenceTransformer(str(model_dir), device="cpu")
    with agentc.load(build) as s:
        ours_s = _median_s(lambda: s.run({"query": QUERY}), reps)
        vec = s.run({"query": QUERY}, fetch=["vec/pool"])["values"]["vec/pool"]
    eager_s = _median_s(lambda: st.encode([QUERY], convert_to_numpy=True), reps)
    err = float(np.abs(vec - st.encode([QUERY], convert_to_numpy=True)).max())
    return {"agentc_s": ours_s, "eager_s": eager_s, "same_output": err <= 1e-4, "max_abs_err": err}


def run(args, out: Path):
    quick = bool(getattr(args, "quick", False))
    reps = 3 if quick else 5
    cases = _cases(quick)
    progress = Progress(len(cases), "import", enabled=not getattr(args, "quiet", False))
    results = []
    with tempfile.TemporaryDirectory(prefix="agentc-import-") as tmp:
        tmp = Path(tmp)
        for i, c in enumerate(cases):
            work = tmp / f"case{i}"
            work.mkdir()
            llm = c["arch"] in rc.LLMS
            model_dir = rc.write(c["arch"], work / "model", c["shape"], c.get("dtype", "float32"), **c.get("extra", {}))
            size = sum(f.stat().st_size for f in model_dir.glob("*.safetensors"))
            seconds, rss = _cold_compile(_graph(work / "graph.py", model_dir, llm), work / "build", work / "cache")
            req = (_llm_requests if llm else _encoder_requests)(work / "build", model_dir, reps)
            results.append({"case": c["case"], "architecture": c["arch"], "kind": "llm" if llm else "encoder",
                            "dtype": c.get("dtype", "float32"), "checkpoint_bytes": size,
                            "compile_s": round(seconds, 1), "peak_rss_gb": round(rss, 2),
                            **{k: round(v, 4) if isinstance(v, float) else v for k, v in req.items()},
                            "speedup_vs_eager": round(req["eager_s"] / req["agentc_s"], 2)})
            progress.step(f"{c['case']}: compile {seconds:.0f}s {rss:.1f} GB, x{results[-1]['speedup_vs_eager']}")
    (out / "table.md").write_text(_table(results))
    llms = [r for r in results if r["kind"] == "llm"]
    big = next((r for r in results if r["case"].startswith("qwen2.5-0.5b")), None)
    summary = {"cases": len(results), "same_output": sum(r["same_output"] for r in results),
               "max_compile_s": max(r["compile_s"] for r in results),
               "max_peak_rss_gb": max(r["peak_rss_gb"] for r in results),
               "llm_geomean_speedup_vs_eager": round(float(np.exp(np.mean([np.log(r["speedup_vs_eager"])
                                                                          for r in llms]))), 2)}
    if big:
        summary.update(qwen05_compile_s=big["compile_s"], qwen05_peak_rss_gb=big["peak_rss_gb"])
    return {"quick": quick, "reps": reps, "tokens": TOKENS, "query": QUERY}, results, summary


def _table(results: list[dict]) -> str:
    head = ("| case | kind | checkpoint | cold compile s | peak RSS GB | agentc ms/request | eager ms/request "
            "| agentc / eager speed-up | same output |")
    lines = [head, "|" + "---|" * 9]
    for r in results:
        lines.append(f"| {r['case']} | {r['kind']} | {r['checkpoint_bytes'] / 1e6:,.0f} MB {r['dtype']} | "
                     f"{r['compile_s']} | {r['peak_rss_gb']} | {r['agentc_s'] * 1e3:,.1f} | {r['eager_s'] * 1e3:,.1f} | "
                     f"{r['speedup_vs_eager']}x | {'yes' if r['same_output'] else 'NO'} |")
    return "\n".join(lines) + "\n"
