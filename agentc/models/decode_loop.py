"""Generation on the device: N decode steps of an LLM as one function, so a chunk of N
tokens costs one call and one host round trip instead of N of each.

The chunk is an `scf.for` around the exported decode step and a small `advance` (the next
token: sampled, or end-of-turn again once end-of-turn was sampled, its position frozen),
composed with the MLIR bindings and inlined, so the kernel is one self-contained function
like every other and the step is exported once whatever N is. IREE runs the loop on its
host VM and issues each step's dispatches without returning to the caller
(experiments/decode-loop: the loop's tokens equal a call per step; unrolling instead grew
the export by 14 s per step).

Why end-of-turn is applied on the device and not by stopping the loop: a data-dependent
loop exit is a device->host read per step on IREE's VM, the sync the chunk exists to
avoid. The host checks the chunk's last token once per chunk (`agent.stop_at_eos`), and a
chunk that ends generation early computes its remaining steps for nothing: what the
chunk length trades against the calls it saves (agentc.models.chunk_choice).

Function (weights first, as every kernel):
  (weights..., token (1,), pos (1,), caches...[, u (N,)]) -> (token_1 (1,) ... token_N (1,), pos, caches...)
(the step's KV caches, as many as it takes: one per layer for K and for V, or two stacked)
Each token is a result of its own, as a token of the call-per-step form is, so the host
ops that read generated tokens (stop checks, detokenize, streaming) take either form; `u`
holds one uniform draw per step where the LLM samples.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from agentc import store
from agentc.lazy import lazy_import

torch = lazy_import("torch")


def advance_fn(choose, eos: int, sampled: bool):
    """The token after a step: `choose(logits[, u])`, unless the previous token ended the
    turn; then end-of-turn again at the same position (the cache write at a frozen
    position rewrites what was there, never past the budget)."""
    def advance(logits, t_prev, p_prev, p_next, *u):
        done = t_prev == eos
        token = torch.where(done, torch.full_like(t_prev, eos), choose(logits, *u) if sampled else choose(logits))
        return token, torch.where(done, p_prev, p_next)

    return advance


def _types(func) -> tuple[list[str], list[str]]:
    from torch_mlir import ir

    ftype = ir.FunctionType(ir.TypeAttr(func.attributes["function_type"]).value)
    return [str(t) for t in ftype.inputs], [str(t) for t in ftype.results]


def _loop_text(name: str, step: str, adv: str, ins: list[str], outs: list[str], n_w: int, n: int,
               sampled: bool) -> str:
    """The loop function, calling the step ((weights, token, pos, caches...) -> (logits,
    caches..., pos + 1)) and the advance; the caches (per layer, or stacked) are iter_args."""
    w_types, (tok_t, pos_t, *cache_t) = ins[:n_w], ins[n_w:]
    nc = len(cache_t)
    all_t = f"tensor<{n}xi32>"
    ws = ", ".join(f"%w{i}: {t}" for i, t in enumerate(w_types))
    wargs = ", ".join(f"%w{i}" for i in range(n_w))
    cs = "".join(f", %c{j}: {t}" for j, t in enumerate(cache_t))
    u_arg = f", %u: tensor<{n}xf32>" if sampled else ""
    u_slice = f"%ui = tensor.extract_slice %u[%i] [1] [1] : tensor<{n}xf32> to tensor<1xf32>" if sampled else ""
    adv_ins = f"{outs[0]}, {tok_t}, {pos_t}, {pos_t}" + (", tensor<1xf32>" if sampled else "")
    adv_args = f"%s#0, %t, %p, %s#{nc + 1}" + (", %ui" if sampled else "")
    iters = "".join(f", %k{j} = %c{j}" for j in range(nc))
    carried = ", ".join([tok_t, pos_t, *cache_t, all_t])
    tokens = "\n    ".join(f"%t{j} = tensor.extract_slice %r#{nc + 2}[{j}] [1] [1] : {all_t} to {tok_t}"
                          for j in range(n))
    step_call = (f"func.call @{step}({wargs}, %t, %p{''.join(f', %k{j}' for j in range(nc))}) "
                 f": ({', '.join(ins)}) -> ({', '.join(outs)})")
    yielded = ", ".join(["%a#0", "%a#1", *(f"%s#{j + 1}" for j in range(nc)), "%o2"])
    returned = ", ".join([*(f"%t{j}" for j in range(n)), "%r#1", *(f"%r#{j + 2}" for j in range(nc))])
    return f"""module {{
  func.func private @{step}({", ".join(ins)}) -> ({", ".join(outs)})
  func.func private @{adv}({adv_ins}) -> ({tok_t}, {pos_t})
  func.func @{name}({ws}, %tok: {tok_t}, %pos: {pos_t}{cs}{u_arg})
      -> ({", ".join([tok_t] * n + [pos_t] + cache_t)}) {{
    %c0_ = arith.constant 0 : index
    %c1_ = arith.constant 1 : index
    %cn_ = arith.constant {n} : index
    %zero = arith.constant dense<0> : {all_t}
    %r:{nc + 3} = scf.for %i = %c0_ to %cn_ step %c1_ iter_args(%t = %tok, %p = %pos{iters}, %o = %zero)
        -> ({carried}) {{
      %s:{nc + 2} = {step_call}
      {u_slice}
      %a:2 = func.call @{adv}({adv_args}) : ({adv_ins}) -> ({tok_t}, {pos_t})
      %o2 = tensor.insert_slice %a#0 into %o[%i] [1] [1] : {tok_t} into {all_t}
      scf.yield {yielded} : {carried}
    }}
    {tokens}
    return {returned} : {", ".join([tok_t] * n + [pos_t] + cache_t)}
  }}
}}"""


def chunk_text(step_text: str, step_name: str, adv_text: str, name: str, n_w: int, n: int, sampled: bool) -> str:
    """The module holding `func @name`: n steps of `step_name` (from the exporter's module
    `step_text`, weights first) each followed by `advance` (from `adv_text`), inlined into
    one function. Cached by the texts and this file: composing parses the whole step."""
    if n < 2:
        raise ValueError(f"a decode chunk has at least 2 steps, got {n}")
    key = {"step": hashlib.sha256(step_text.encode()).hexdigest(), "advance": adv_text, "name": name,
           "step_name": step_name, "n_w": n_w, "n": n, "sampled": sampled,
           "source": hashlib.sha256(Path(__file__).read_bytes()).hexdigest()}
    return store.cached_bytes("decode-chunks", key, lambda: _compose(step_text, step_name, adv_text, name, n_w, n,
                                                                        sampled).encode(), ".mlir").decode()


def _compose(step_text, step_name, adv_text, name, n_w, n, sampled) -> str:
    from torch_mlir import ir
    from torch_mlir.passmanager import PassManager

    with ir.Context() as ctx:
        ctx.allow_unregistered_dialects = True
        module = ir.Module.parse(step_text)
        step = ir.SymbolTable(module.operation)[step_name]
        ins, outs = _types(step)
        adv_module = ir.Module.parse(adv_text)
        (adv,) = [op for op in adv_module.body.operations if op.operation.name == "func.func"]
        adv_name = f"{name}__advance"
        ir.SymbolTable.set_symbol_name(adv, adv_name)
        loop = ir.Module.parse(_loop_text(name, step_name, adv_name, ins, outs, n_w, n, sampled))
        for f in (step, adv):
            f.attributes["sym_visibility"] = ir.StringAttr.get("private")
        module.body.append(adv.operation)
        for op in list(loop.body.operations):
            if len(op.regions[0].blocks):  # not its declarations of the step and advance
                module.body.append(op)
        # No canonicalization while inlining: it would hoist the step's constants out of
        # the loop, and IREE 3.13's CPU code generation fails on a dispatch in the loop that
        # reads a constant defined outside it ('arith.cmpf' op requires all operands to
        # have the same type, in the sampler's reduction).
        PassManager.parse("builtin.module(inline{default-pipeline=},symbol-dce)").run(module.operation)
        module.operation.verify()
        return str(module)
