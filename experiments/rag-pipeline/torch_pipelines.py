"""The RAG pipeline in PyTorch, the anchors of gpu_models.py `run`, each in a worker process.

- `eager`: transformers as most code calls it: BertModel + mean pooling, then
  LlamaForCausalLM.generate (dynamic KV cache), eager attention, float32.
- `compiled-<dtype>`: what a team tuning for latency writes in plain PyTorch: the model
  weights in `dtype` (float32 or bfloat16), SDPA attention, the encoder (inputs padded to its
  fixed length, so one shape) and the LLM's decode step over a static KV cache each under
  torch.compile(mode="reduce-overhead") (CUDA graphs); prefill plain; greedy, one host
  check of the token per step for the end of turn.

All see the same questions, passages, tokenizers and chat template as agentc, and stop at
end-of-turn or after the build's token budget.
"""

from __future__ import annotations

import json
import time
import warnings
from pathlib import Path

import numpy as np
from gpu_models import ENCODER, LLM, _serve, model_dirs
from rag_e2e import TEMPLATE, token_stamps


def _parts(b: Path):
    """(encoder, decoder: agentc's registry objects for the build's tokenizers and chat
    template, the re-created checkpoints' directories, the corpus embeddings, the passages)."""
    from agentc.models import registry
    from agentc.models.irpa import read_irpa

    plan = json.loads((b / "plan.json").read_text())
    own = {name.partition("@")[0]: registry.carried(name, m["key"], b / m["dir"]) for name, m in plan["models"].items()}
    archives = {g: ps for rel in plan["weights"] for g, ps in read_irpa(b / rel).items()}
    corpus = next(iter(next(ps for g, ps in archives.items() if g.startswith("index:")).values()))
    passages = [ln.strip() for ln in (b / "knowledge.txt").read_text().splitlines() if ln.strip()]
    return own[ENCODER], own[LLM], model_dirs(b), corpus, passages


def _quiet():
    from transformers.utils import logging as hf_logging

    warnings.simplefilter("ignore")
    hf_logging.set_verbosity_error()


def eager_worker(conn, build: str, max_tokens: int):
    import torch
    from transformers import BertModel, LlamaForCausalLM

    _quiet()
    t0 = time.perf_counter()
    enc, dec, dirs, corpus, passages = _parts(Path(build))
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    bert = BertModel.from_pretrained(str(dirs[ENCODER]), attn_implementation="eager").to(dev).eval()
    llama = LlamaForCausalLM.from_pretrained(str(dirs[LLM]), attn_implementation="eager").to(dev).eval()
    llama.generation_config.eos_token_id = sorted(dec.eos_ids)  # both sides stop at end-of-turn

    def run(question):
        t = time.perf_counter()
        row = enc.tokenize(question)[0]
        ids = torch.tensor(row[None, :int((row != enc.config.pad).sum())], device=dev)
        with torch.no_grad():
            hidden = bert(input_ids=ids).last_hidden_state[0]
            v = torch.nn.functional.normalize(hidden.mean(0), dim=0).cpu().numpy()
        embed_ms = (time.perf_counter() - t) * 1e3
        context = _context(corpus, passages, v)
        prompt = torch.tensor([dec.chat_ids(TEMPLATE.format(ctx=context, q=question))], device=dev)
        processors, stamps = token_stamps()
        t1 = time.perf_counter()
        with torch.no_grad():
            out = llama.generate(prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=max_tokens,
                                 do_sample=False, logits_processor=processors)
        new = out[0, prompt.shape[1]:].tolist()
        return {"context": context, "answer": dec.detokenize(new).strip(), "embed_ms": embed_ms,
                "prefill_ms": (stamps[0] - t1) * 1e3, "decode_steps": len(stamps) - 1,
                "decode_s": stamps[-1] - stamps[0]}

    _serve(conn, run, time.perf_counter() - t0, torch)


def _context(corpus, passages, v) -> str:
    top = np.argsort(-(corpus @ v), kind="stable")[:3]
    return "\n".join(passages[i] for i in top)


def compiled_worker(conn, build: str, max_tokens: int, dtype: str):
    import torch
    import transformers
    from transformers import BertModel, LlamaForCausalLM

    from agentc.bench.decode_torch import _static_cache

    _quiet()
    t0 = time.perf_counter()
    enc, dec, dirs, corpus, passages = _parts(Path(build))
    dev, dt = torch.device("cuda" if torch.cuda.is_available() else "cpu"), getattr(torch, dtype)
    bert = BertModel.from_pretrained(str(dirs[ENCODER]), attn_implementation="sdpa").to(dev, dt).eval()
    llama = LlamaForCausalLM.from_pretrained(str(dirs[LLM]), attn_implementation="sdpa").to(dev, dt).eval()
    cache = _static_cache(transformers, llama.config, dec.config.prompt_len + max_tokens, dt, dev)
    eos = dec.eos_ids

    def embed(ids, mask):
        h = bert(input_ids=ids, attention_mask=mask).last_hidden_state
        m = mask[..., None].to(h.dtype)
        return torch.nn.functional.normalize(((h * m).sum(1) / m.sum(1)).float(), dim=-1)

    def step(tok, pos):
        return llama(tok, past_key_values=cache, cache_position=pos, use_cache=True).logits[:, -1]

    embed_c = torch.compile(embed, mode="reduce-overhead", fullgraph=True)
    step_c = torch.compile(step, mode="reduce-overhead", fullgraph=True)

    def run(question):
        t = time.perf_counter()
        ids = torch.tensor(enc.tokenize(question)[:1], device=dev)  # padded: one shape, one graph
        with torch.no_grad():
            torch.compiler.cudagraph_mark_step_begin()
            v = embed_c(ids, (ids != enc.config.pad).long())[0].cpu().numpy()
        embed_ms = (time.perf_counter() - t) * 1e3
        context = _context(corpus, passages, v)
        prompt = dec.chat_ids(TEMPLATE.format(ctx=context, q=question))
        n = len(prompt)
        stamps = []
        t1 = time.perf_counter()
        with torch.no_grad():
            cache.reset()
            logits = llama(torch.tensor([prompt], device=dev), past_key_values=cache,
                           cache_position=torch.arange(n, device=dev), use_cache=True).logits[:, -1]
            tok = logits.argmax(-1, keepdim=True)
            new = [int(tok)]  # a host sync per token: the end-of-turn check
            stamps.append(time.perf_counter())
            while len(new) < max_tokens and new[-1] not in eos:
                torch.compiler.cudagraph_mark_step_begin()
                tok = step_c(tok, torch.tensor([n + len(new) - 1], device=dev)).argmax(-1, keepdim=True)
                new.append(int(tok))
                stamps.append(time.perf_counter())
        return {"context": context, "answer": dec.detokenize(new).strip(), "embed_ms": embed_ms,
                "prefill_ms": (stamps[0] - t1) * 1e3, "decode_steps": len(stamps) - 1,
                "decode_s": stamps[-1] - stamps[0]}

    _serve(conn, run, time.perf_counter() - t0, torch, warmups=4)


def worker(name: str):
    """(process target, its arguments after (conn, build, max_tokens)) of anchor `name`:
    eager, compiled-float32, compiled-bfloat16."""
    if name == "eager":
        return eager_worker, ()
    kind, _, dtype = name.partition("-")
    if kind != "compiled" or dtype not in ("float32", "bfloat16"):
        raise SystemExit(f"gpu_models run: --anchors: unknown anchor {name!r} (eager, compiled-float32, "
                         "compiled-bfloat16)")
    return compiled_worker, (dtype,)
