"""The PyTorch anchors of `agentc bench decode` on a GPU: one LLM's decode speed in
PyTorch, run where torch with CUDA and transformers are (the device machine), on the same
protocol as agentc bench decode (batch 1, greedy, a 160-token prompt, exactly 32 new
tokens: end-of-turn suppressed, the median of --runs after warm-ups).

    python -m agentc.bench.decode_torch MODEL_DIR --out OUT.json [--runs 5] [--dtypes float32,bfloat16]

MODEL_DIR holds a config.json (a build's `models/<name>/`); the weights are seeded random
(the speed of a dense model does not depend on its values). Modes, per dtype:
- eager: transformers' generate with its dynamic cache;
- static: a greedy loop over a static KV cache (what a CUDA graph needs), the step eager;
- compiled: the same loop with the decode step under torch.compile(mode="reduce-overhead")
  (CUDA graphs), warmed up until its shapes are compiled.
Prefill is the time to the first token; decode tokens/s counts the tokens after it over
the time from the first to the last (each stamped after a device sync).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

PROMPT_TOKENS, TOKENS = 160, 32


def _static_cache(transformers, config, length: int, dtype, device):
    try:
        return transformers.StaticCache(config=config, max_cache_len=length)
    except TypeError:  # older transformers
        return transformers.StaticCache(config=config, max_batch_size=1, max_cache_len=length, dtype=dtype,
                                        device=device)


def measure(model_dir: str, dtype: str, mode: str, runs: int, device: str = "cuda") -> dict:
    """eager: `generate` (dynamic cache). static / compiled: a greedy loop over a static KV
    cache, the decode step plain or under torch.compile(mode="reduce-overhead") (CUDA
    graphs; each step marked, its logits cloned out of the graph's memory)."""
    import torch
    import transformers

    config = transformers.AutoConfig.from_pretrained(model_dir)
    torch.manual_seed(0)
    model = transformers.AutoModelForCausalLM.from_config(config, torch_dtype=getattr(torch, dtype))
    model = model.to(device).eval()
    ids = torch.randint(0, config.vocab_size, (1, PROMPT_TOKENS), generator=torch.Generator().manual_seed(1)).to(device)

    def sync():
        if device == "cuda":
            torch.cuda.synchronize()

    def generate_eager():
        stamps: list[float] = []

        class Stamp(transformers.LogitsProcessor):
            def __call__(self, input_ids, scores):
                sync()
                stamps.append(time.perf_counter())
                return scores

        model.generate(ids, max_new_tokens=TOKENS, min_new_tokens=TOKENS, do_sample=False, pad_token_id=0,
                       logits_processor=transformers.LogitsProcessorList([Stamp()]),
                       attention_mask=torch.ones_like(ids))
        return stamps

    cache = _static_cache(transformers, config, PROMPT_TOKENS + TOKENS, getattr(torch, dtype), device)

    def step(tok, pos):
        return model(tok, past_key_values=cache, cache_position=pos, use_cache=True).logits[:, -1]

    decode = torch.compile(step, mode="reduce-overhead", fullgraph=True) if mode == "compiled" else step

    def generate_static():
        cache.reset()
        stamps = []
        logits = model(ids, past_key_values=cache, cache_position=torch.arange(PROMPT_TOKENS, device=device),
                       use_cache=True).logits[:, -1]
        tok = logits.argmax(-1, keepdim=True)
        sync()
        stamps.append(time.perf_counter())
        for i in range(TOKENS - 1):
            if mode == "compiled":
                torch.compiler.cudagraph_mark_step_begin()
            logits = decode(tok, torch.tensor([PROMPT_TOKENS + i], device=device)).clone()
            tok = logits.argmax(-1, keepdim=True)
            sync()
            stamps.append(time.perf_counter())
        return stamps

    samples = []
    t_load = time.perf_counter()
    for i in range(runs + (3 if mode == "compiled" else 1)):
        sync()
        t0 = time.perf_counter()
        with torch.no_grad():
            stamps = generate_eager() if mode == "eager" else generate_static()
        samples.append({"prefill_s": stamps[0] - t0, "decode_s": stamps[-1] - stamps[0], "tokens": len(stamps) - 1})
        print(f"{dtype} {mode} run {i}: prefill {samples[-1]['prefill_s'] * 1e3:.1f} ms, "
              f"{samples[-1]['tokens'] / samples[-1]['decode_s']:.1f} tok/s", file=sys.stderr, flush=True)
    kept = samples[-runs:]
    return {"dtype": dtype, "mode": mode, "prefill_ms": round(statistics.median(s["prefill_s"] for s in kept) * 1e3, 2),
            "decode_tok_s": round(statistics.median(s["tokens"] / s["decode_s"] for s in kept), 1),
            "tokens": 1 + kept[0]["tokens"], "warmup_and_runs_s": round(time.perf_counter() - t_load, 1)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model_dir")
    p.add_argument("--out", required=True)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--dtypes", default="float32,bfloat16")
    p.add_argument("--modes", default="eager,static,compiled")
    p.add_argument("--device", default="cuda", help="cpu: a dry run")
    args = p.parse_args(argv)
    import torch

    name = torch.cuda.get_device_name(0) if args.device == "cuda" else "cpu"
    out = {"device": name, "torch": torch.__version__, "prompt_tokens": PROMPT_TOKENS,
           "tokens": TOKENS, "runs": args.runs, "results": []}
    rows = out["results"]
    for d in args.dtypes.split(","):
        for m in args.modes.split(","):
            try:
                rows.append(measure(args.model_dir, d, m, args.runs, args.device))
            except Exception as e:  # noqa: BLE001 - one mode failing leaves the others measured
                rows.append({"dtype": d, "mode": m, "error": f"{type(e).__name__}: {str(e)[:300]}"})
                print(f"{d} {m}: {rows[-1]['error']}", file=sys.stderr, flush=True)
            Path(args.out).write_text(json.dumps(out, indent=1) + "\n")  # after each mode
    for r in rows:
        if "error" in r:
            print(f"{r['dtype']:9s} {r['mode']:9s} failed: {r['error']}")
        else:
            print(f"{r['dtype']:9s} {r['mode']:9s} prefill {r['prefill_ms']:7.2f} ms  decode {r['decode_tok_s']:7.1f} tok/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
