"""The chunk as a loop instead of unrolled: `decode_loop` runs N decode steps in an
`scf.for` whose body calls the exported decode step and a small `advance` (greedy sample,
end-of-turn applied on the device, position frozen once it is sampled), so the exported
code is one step whatever N is. IREE runs the loop on its host VM and issues each step's
dispatches without returning to the caller: one call and one readback per N tokens.

Compared on this CPU with a call per step (decode_step + sample, as agentc runs today) and
with the unrolled chunk (chunks.py): per-token time, and export + compile time.

    python experiments/decode-loop/loop.py [--n 8]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from chunks import stacked_decode

LLM = "smollm2-135m-random@192x256"  # as chunks.py


def advance_fn(eos: int):
    import torch

    from agentc.models.sampling import greedy

    def advance(logits, t_prev, p_prev, p_next):
        done = t_prev == eos
        token = torch.where(done, torch.full_like(t_prev, eos), greedy(logits))
        return token, torch.where(done, p_prev, p_next)

    return advance


def _signature(text: str, name: str) -> tuple[list[str], list[str]]:
    from torch_mlir import ir

    with ir.Context() as ctx:
        ctx.allow_unregistered_dialects = True
        module = ir.Module.parse(text)
        fop = ir.SymbolTable(module.operation)[name]
        ftype = ir.FunctionType(ir.TypeAttr(fop.attributes["function_type"]).value)
        return [str(t) for t in ftype.inputs], [str(t) for t in ftype.results]


def loop_module(step_text: str, adv_text: str, n_w: int, n: int) -> str:
    """One module: the exported step and advance functions, moved into one module with the
    MLIR bindings (which print their affine-map aliases anew), and the loop calling them."""
    from torch_mlir import ir

    ins, outs = _signature(step_text, "decode_step")
    w_types, (tok_t, pos_t, k_t, v_t) = ins[:n_w], ins[n_w:]
    out_t = f"tensor<{n}xi32>"
    ws = ", ".join(f"%w{i}: {t}" for i, t in enumerate(w_types))
    wargs = ", ".join(f"%w{i}" for i in range(n_w))
    loop = f"""module {{
  func.func private @decode_step({", ".join(ins)}) -> ({", ".join(outs)})
  func.func private @advance({outs[0]}, {tok_t}, {pos_t}, {pos_t}) -> ({tok_t}, {pos_t})
  func.func @decode_loop({ws}, %tok: {tok_t}, %pos: {pos_t}, %k: {k_t}, %v: {v_t})
      -> ({out_t}, {k_t}, {v_t}, {pos_t}) {{
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %cn = arith.constant {n} : index
    %init = tensor.empty() : {out_t}
    %r:5 = scf.for %i = %c0 to %cn step %c1 iter_args(%t = %tok, %p = %pos, %kk = %k, %vv = %v, %o = %init)
        -> ({tok_t}, {pos_t}, {k_t}, {v_t}, {out_t}) {{
      %s:4 = func.call @decode_step({wargs}, %t, %p, %kk, %vv)
          : ({", ".join(ins)}) -> ({", ".join(outs)})
      %a:2 = func.call @advance(%s#0, %t, %p, %s#3)
          : ({outs[0]}, {tok_t}, {pos_t}, {pos_t}) -> ({tok_t}, {pos_t})
      %o2 = tensor.insert_slice %a#0 into %o[%i] [1] [1] : {tok_t} into {out_t}
      scf.yield %a#0, %a#1, %s#1, %s#2, %o2 : {tok_t}, {pos_t}, {k_t}, {v_t}, {out_t}
    }}
    return %r#4, %r#2, %r#3, %r#1 : {out_t}, {k_t}, {v_t}, {pos_t}
  }}
}}"""
    with ir.Context() as ctx:
        ctx.allow_unregistered_dialects = True
        module = ir.Module.parse(step_text)
        others = [ir.Module.parse(t) for t in (adv_text, loop)]  # alive until their ops are moved
        for other in others:
            for op in list(other.body.operations):
                if len(op.regions[0].blocks):  # not the loop's declarations of the other two
                    module.body.append(op)
        return str(module)


def _same_tokens(dev, entries, n: int, n_w: int, eos: int) -> bool:
    """The loop's tokens against the same steps called one by one, each token read back."""
    (_, _, step_vmfb, _, args), (_, _, sample_vmfb, _, _), (_, _, loop_vmfb, _, _) = entries
    step, sample = dev.load(step_vmfb, "decode_step"), dev.load(sample_vmfb, "sample")
    weights = [dev.upload(a) for a in args[:n_w]]
    token, pos, k, v = args[n_w:]
    want = []
    for _ in range(n):
        logits, k, v, nxt = step(*weights, dev.upload(token), dev.upload(pos), dev.upload(np.asarray(k)),
                                 dev.upload(np.asarray(v)))
        token = dev.readback(sample(logits)).astype(np.int32).reshape(1)
        k, v, pos = dev.readback(k), dev.readback(v), dev.readback(nxt)
        want.append(int(token[0]))
        if want[-1] == eos:
            break
    out = dev.load(loop_vmfb, "decode_loop")(*weights, *[dev.upload(a) for a in args[n_w:]])
    got = [int(t) for t in dev.readback(out[0])]
    del out
    return got[:len(want)] == want and all(t == eos for t in got[len(want):])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=8)
    p.add_argument("--budget", type=float, default=3.0)
    args = p.parse_args()
    from agentc.bench import batching_run
    from agentc.bench.timing import Device
    from agentc.build.iree_compile import compile_module
    from agentc.devices import KINDS
    from agentc.models import registry
    from agentc.models.export import export_function
    from agentc.models.sampling import greedy

    model = registry.decoder(LLM)
    c, weights = model.config, model.all_group
    names, n_w = list(weights), len(weights)
    rng = np.random.default_rng(1)
    cache = (rng.standard_normal((c.layers, 1, c.kv_heads, c.cache_len, c.head_dim)) * 0.1).astype(np.float32)
    step = [*weights.values(), np.array([17], np.int32), np.array([c.prompt_len], np.int32), cache, cache.copy()]
    logits = rng.standard_normal((1, c.vocab)).astype(np.float32)
    i32 = np.array([5], np.int32)
    key = {"experiment": "decode-loop", "model": LLM}
    t0 = time.perf_counter()
    step_text = export_function(lambda *a: stacked_decode(model, *a), step, "decode_step", names, key)
    adv_text = export_function(advance_fn(c.eos), [logits, i32, i32, i32], "advance", [], key)
    sample_text = export_function(greedy, [logits], "sample", [], key)
    text = loop_module(step_text, adv_text, n_w, args.n)
    exported = time.perf_counter() - t0
    kind = KINDS["cpu"]
    t0 = time.perf_counter()
    loop_vmfb = compile_module(text, kind.target, kind.compile_flags, "cpu")[0]
    compiled = time.perf_counter() - t0
    print(f"decode_loop N={args.n}: exported in {exported:.1f} s, compiled in {compiled:.1f} s", file=sys.stderr)
    entries = [("decode_step", 1, compile_module(step_text, kind.target, kind.compile_flags, "cpu")[0],
                "decode_step", step),
               ("sample", 1, compile_module(sample_text, kind.target, kind.compile_flags, "cpu")[0], "sample",
                [logits]),
               ("decode_loop", args.n, loop_vmfb, "decode_loop", step)]
    dev = Device(kind.driver, kind.staged_readback)
    load = os.getloadavg()[0]
    try:
        same = _same_tokens(dev, entries, args.n, n_w, c.eos)
        labels, stats = batching_run.measure(dev, entries, args.budget, print)
    finally:
        dev.close()
    print(f"the loop's {args.n} tokens equal {args.n} step + sample calls': {same}")
    ms = {name: st.median_s * 1e3 for (name, _), st in zip(labels, stats)}
    per_call = ms["decode_step"] + ms["sample"]
    per_token = ms["decode_loop"] / args.n
    print(f"load average {load:.2f} -> {os.getloadavg()[0]:.2f}")
    print(f"call per step: {per_call:.2f} ms/token (decode_step {ms['decode_step']:.2f} + sample {ms['sample']:.3f}); "
          f"loop of {args.n}: {per_token:.2f} ms/token ({per_call / per_token:.3f}x), {1 / args.n:.3f} syncs/token")


if __name__ == "__main__":
    main()
