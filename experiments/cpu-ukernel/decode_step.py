"""A whole SmolLM2-135M decode step with its linears in GGUF's Q4_1 form through the
hand-written kernel (q4_1_gemv.c), against agentc's float32 step, on this CPU (issue 23).

The step is assembled as one IREE function: PyTorch pieces between the linears (embedding
and RMS norm, rotary attention over the KV cache, residual and norm, SwiGLU), each exported
through torch-mlir like agentc's kernels, and one kernel dispatch per group of linears that
read the same input (q, k and v stacked into 960 rows; gate and up into 3,072; o; down;
the tied head). All 30 layers and the head run in one call, as agentc's step does.

Checked against transformers' LlamaForCausalLM holding the same dequantized weights: a
prompt stepped token by token from an empty cache gives logits within the int8
activations' error, and the same greedy next tokens. Timed interleaved with the step
agentc compiles today (the generic import's `decode`, float32 weights, the same 256-slot
cache).

    python experiments/cpu-ukernel/decode_step.py [--groups N] [--kernel vnni|exact|empty]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from gemv_ukernel import HEADER, build_object, executable, pack
from gemv_ukernel import dispatch as q4_dispatch

from agentc.bench.timing import Device, interleaved
from agentc.build.iree_compile import compile_module
from agentc.devices import KINDS
from agentc.models.export import export_function

MODEL = "smollm2-135m-random@192x256"
S = 256  # cache slots
D, H, KV, HD, F, V, L = 576, 9, 3, 64, 1536, 49152, 30
QKV = D + 2 * KV * HD


def quantize_q4_1(w: np.ndarray):
    """(n, k) float32 -> GGUF Q4_1 blocks of 32: the values packed for the kernel (n * k / 2
    bytes), scales, minima (n * k / 32 each), and the float32 matrix they stand for."""
    n, k = w.shape
    b = w.reshape(n, k // 32, 32)
    lo, hi = b.min(-1), b.max(-1)
    d = ((hi - lo) / 15).astype(np.float32)
    q = np.clip(np.round((b - lo[..., None]) / np.where(d == 0, 1, d)[..., None]), 0, 15).astype(np.uint8)
    deq = (q.astype(np.float32) * d[..., None] + lo[..., None]).reshape(n, k)
    return [pack(q), d.reshape(-1), lo.astype(np.float32).reshape(-1)], deq


def pieces(eps: float, theta: float):
    def rms(x, w):
        return x * torch.rsqrt((x * x).mean() + eps) * w

    def embed_norm(table, token, w):
        x = torch.index_select(table, 0, token)[0]
        return x, rms(x, w)

    def residual_norm(x, y, w):
        x = x + y
        return x, rms(x, w)

    def attend(qkv, pos, kc, vc):
        q, k, v = qkv[:D].reshape(H, HD), qkv[D:D + KV * HD].reshape(KV, HD), qkv[D + KV * HD:].reshape(KV, HD)
        inv = 1.0 / theta ** (torch.arange(0, HD, 2, dtype=torch.float32) / HD)
        ang = pos.to(torch.float32) * inv
        cos, sin = torch.cat([ang.cos(), ang.cos()]), torch.cat([ang.sin(), ang.sin()])

        def rope(t):
            return t * cos + torch.cat([-t[:, HD // 2:], t[:, :HD // 2]], dim=-1) * sin

        q, k = rope(q), rope(k)
        slots = torch.arange(S, dtype=torch.int32)
        here = (slots == pos)[None, :, None]
        kc, vc = torch.where(here, k[:, None], kc), torch.where(here, v[:, None], vc)
        scores = torch.einsum("hgd,hsd->hgs", q.reshape(KV, H // KV, HD), kc) / HD ** 0.5
        scores = scores + torch.where(slots <= pos, 0.0, float("-inf"))
        out = torch.einsum("hgs,hsd->hgd", torch.softmax(scores, dim=-1), vc)
        return out.reshape(D), kc, vc

    def swiglu(gu):
        return torch.nn.functional.silu(gu[:F]) * gu[F:]

    f32, i32 = np.zeros(D, np.float32), np.zeros(1, np.int32)
    cache = np.zeros((KV, S, HD), np.float32)
    return {"embed_norm": (embed_norm, [np.zeros((V, D), np.float32), i32, f32]),
            "residual_norm": (residual_norm, [f32, f32, f32]),
            "attend": (attend, [np.zeros(QKV, np.float32), i32, cache, cache]),
            "swiglu": (swiglu, [np.zeros(2 * F, np.float32)])}


def private_func(text: str, name: str) -> str:
    """The exported module's function, private, with its affine-map aliases renamed."""
    aliases = "\n".join(line for line in text.splitlines() if line.startswith("#"))
    body = text[text.index("module"):]
    body = body[body.index("{") + 1:body.rindex("}")]
    both = (aliases + "\n" + body).replace(f"func.func @{name}", f"func.func private @{name}")
    return re.sub(r"#map(\d*)\b", lambda m: f"#{name}_map{m.group(1)}", both)


def step_module(obj: Path | None, groups: int, eps: float, theta: float) -> str:
    """The step (`obj` None: the same step with float32 linears of IREE's own code): weights first (table, final norm, then per layer: norm 1, qkv q/d/m, o q/d/m,
    norm 2, gate-up q/d/m, down q/d/m; then the head q/d/m), token, pos, K caches, V caches
    -> logits, K caches, V caches."""
    shapes = {"qkv": (QKV, D), "o": (D, D), "gu": (2 * F, D), "down": (D, F), "head": (V, D)}
    funcs, aliases = [], []
    parts = dict(pieces(eps, theta))
    if obj is None:
        for name, (n, k) in shapes.items():
            parts[f"lin_{name}"] = (lambda w, x: w @ x, [np.zeros((n, k), np.float32), np.zeros(k, np.float32)])
    for name, (fn, args) in parts.items():
        text = private_func(export_function(fn, args, name, [], {"experiment": "cpu-ukernel-step"}), name)
        aliases += [ln for ln in text.splitlines() if ln.startswith("#")]
        funcs.append("\n".join(ln for ln in text.splitlines() if not ln.startswith("#")))

    def qdm(n, k):
        if obj is None:  # the float32 matrix, then two placeholders for the scale and minimum
            return [f"tensor<{n}x{k}xf32>", "tensor<1xf32>", "tensor<1xf32>"]
        return [f"tensor<{n * k // 2}xi8>", f"tensor<{n * k // 32}xf32>", f"tensor<{n * k // 32}xf32>"]

    def dispatch(name, n, k, out, q, d, m, x):
        if obj is None:
            return (f"    {out} = func.call @lin_{name}({q}, {x}) : (tensor<{n}x{k}xf32>, tensor<{k}xf32>) "
                    f"-> tensor<{n}xf32>")
        return q4_dispatch(name, n, k, out, q, d, m, x)

    t576, cache_t = f"tensor<{D}xf32>", f"tensor<{KV}x{S}x{HD}xf32>"
    args = [("%table", f"tensor<{V}x{D}xf32>"), ("%final", t576)]
    for i in range(L):
        args.append((f"%n1_{i}", t576))
        args += [(f"%qkv{j}_{i}", t) for j, t in zip("qdm", qdm(*shapes["qkv"]))]
        args += [(f"%o{j}_{i}", t) for j, t in zip("qdm", qdm(*shapes["o"]))]
        args.append((f"%n2_{i}", t576))
        args += [(f"%gu{j}_{i}", t) for j, t in zip("qdm", qdm(*shapes["gu"]))]
        args += [(f"%down{j}_{i}", t) for j, t in zip("qdm", qdm(*shapes["down"]))]
    args += [(f"%head{j}", t) for j, t in zip("qdm", qdm(*shapes["head"]))]
    args += [("%token", "tensor<1xi32>"), ("%pos", "tensor<1xi32>")]
    args += [(f"%k{i}", cache_t) for i in range(L)] + [(f"%v{i}", cache_t) for i in range(L)]
    body = [(f"    %x_0, %h_0 = func.call @embed_norm(%table, %token, %n1_0) : (tensor<{V}x{D}xf32>, "
             f"tensor<1xi32>, {t576}) -> ({t576}, {t576})")]
    outs_k, outs_v = [], []
    for i in range(L):
        body.append(dispatch("qkv", *shapes["qkv"], f"%qkv_{i}", f"%qkvq_{i}", f"%qkvd_{i}", f"%qkvm_{i}", f"%h_{i}"))
        body.append(f"    %a_{i}, %kn{i}, %vn{i} = func.call @attend(%qkv_{i}, %pos, %k{i}, %v{i}) : (tensor<{QKV}xf32>, "
                    f"tensor<1xi32>, {cache_t}, {cache_t}) -> ({t576}, {cache_t}, {cache_t})")
        body.append(dispatch("o", *shapes["o"], f"%o_{i}", f"%oq_{i}", f"%od_{i}", f"%om_{i}", f"%a_{i}"))
        body.append(f"    %y_{i}, %g_{i} = func.call @residual_norm(%x_{i}, %o_{i}, %n2_{i}) : ({t576}, {t576}, {t576}) "
                    f"-> ({t576}, {t576})")
        body.append(dispatch("gu", *shapes["gu"], f"%gu_{i}", f"%guq_{i}", f"%gud_{i}", f"%gum_{i}", f"%g_{i}"))
        body.append(f"    %s_{i} = func.call @swiglu(%gu_{i}) : (tensor<{2 * F}xf32>) -> tensor<{F}xf32>")
        body.append(dispatch("down", *shapes["down"], f"%dn_{i}", f"%downq_{i}", f"%downd_{i}", f"%downm_{i}",
                             f"%s_{i}"))
        w = f"%n1_{i + 1}" if i + 1 < L else "%final"
        body.append(f"    %x_{i + 1}, %h_{i + 1} = func.call @residual_norm(%y_{i}, %dn_{i}, {w}) : ({t576}, {t576}, "
                    f"{t576}) -> ({t576}, {t576})")
        outs_k.append(f"%kn{i}")
        outs_v.append(f"%vn{i}")
    body.append(dispatch("head", *shapes["head"], "%logits", "%headq", "%headd", "%headm", f"%h_{L}"))
    results = ["%logits", *outs_k, *outs_v]
    types = [f"tensor<{V}xf32>"] + [cache_t] * (2 * L)
    body.append(f"    return {', '.join(results)} : {', '.join(types)}")
    sig = ", ".join(f"{n}: {t}" for n, t in args)
    exes = "".join(executable(name, obj, n, k, -(-n // groups)) for name, (n, k) in shapes.items()) if obj else ""
    return (HEADER + "\n".join(dict.fromkeys(aliases)) + "\nmodule {\n" + exes + "\n".join(funcs)
            + f"\n  func.func @step({sig}) -> ({', '.join(types)}) {{\n" + "\n".join(body) + "\n  }\n}\n")


def weights(model_dir: Path):
    """The reference model (transformers, random weights rounded to Q4_1) and the step's
    weight arguments."""
    from transformers import AutoModelForCausalLM

    ref = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    layers = ref.model.layers
    cfg = ref.config
    out, dense = [], []  # the Q4_1 form's arguments; the float32 form's
    one = np.zeros(1, np.float32)
    with torch.no_grad():
        table = ref.model.embed_tokens.weight
        q_head, deq = quantize_q4_1(table.numpy())
        table.copy_(torch.from_numpy(deq))  # tied: the head and the table are the same matrix
        out += [table.numpy().copy(), ref.model.norm.weight.numpy().copy()]
        dense += out[:2]
        for layer in layers:
            a, m = layer.self_attn, layer.mlp
            for norm, groups in ((layer.input_layernorm, ([a.q_proj, a.k_proj, a.v_proj], [a.o_proj])),
                                 (layer.post_attention_layernorm, ([m.gate_proj, m.up_proj], [m.down_proj]))):
                out.append(norm.weight.numpy().copy())
                dense.append(out[-1])
                for group in groups:  # stacked, rounded to Q4_1, and the reference given the rounded rows
                    qdm, deq = quantize_q4_1(np.concatenate([lin.weight.numpy() for lin in group]))
                    rows = 0
                    for lin in group:
                        lin.weight.copy_(torch.from_numpy(deq[rows:rows + lin.weight.shape[0]]))
                        rows += lin.weight.shape[0]
                    out += qdm
                    dense += [deq, one, one]
        out += q_head
        dense += [table.numpy(), one, one]
    rope = cfg.rope_parameters["rope_theta"] if getattr(cfg, "rope_parameters", None) else cfg.rope_theta
    return ref, out, dense, cfg.rms_norm_eps, rope


TOKENS, ROUNDS, PROMPT = 32, 5, 160


def generation(dev, f32, f32_args, step, q_args, n_w) -> dict[str, float]:
    """ms per token over TOKENS greedy steps from position PROMPT, the caches staying on the
    device and the logits read back for the host's argmax, as agentc's runtime does with a call
    per step; beside llama.cpp decoding the packaged Q4_1 GGUF of SmolLM2-135M-Instruct (real
    weights, its own prompt of PROMPT tokens) where llama-cpp-python is installed; rounds
    interleaved."""
    def loop(fn, args, n_w):
        w, caches = args[:n_w], args[n_w + 2:]
        tok = 7
        t0 = time.perf_counter()
        for i in range(TOKENS):
            res = fn(*w, dev.upload(np.array([tok], np.int32)), dev.upload(np.array([PROMPT + i], np.int32)), *caches)
            caches = list(res[1:1 + 2 * L])
            tok = int(np.argmax(dev.readback(res[0])))
        return (time.perf_counter() - t0) / TOKENS * 1e3

    runs: dict[str, list[float]] = {"agentc float32 step": [], "Q4_1 step": []}
    llama = None
    try:
        from agentc.bench.decode import _LlamaCpp
        from agentc.models import assets

        llama = _LlamaCpp(Path(assets.smollm2_gguf()))
        runs["llama.cpp"] = []
    except ImportError:
        print("llama-cpp-python is not installed: no llama.cpp beside it", file=sys.stderr)
    ids = [int(t) for t in np.random.default_rng(2).integers(3, V, PROMPT)]
    for _ in range(ROUNDS):
        runs["agentc float32 step"].append(loop(f32, f32_args, len(f32_args) - 2 - 2 * L))
        runs["Q4_1 step"].append(loop(step, q_args, n_w))
        if llama is not None:
            r = llama.request(ids)
            runs["llama.cpp"].append(r["decode_s"] / r["tokens"] * 1e3)
    return {k: float(np.median(v)) for k, v in runs.items()}


def main() -> None:
    from agentc.models import registry

    ap = argparse.ArgumentParser()
    ap.add_argument("--groups", type=int, default=4, help="workgroups per linear's dispatch (its rows split evenly)")
    ap.add_argument("--tokens", type=int, default=12, help="prompt length stepped for the check")
    ap.add_argument("--kernel", choices=("vnni", "exact", "empty"), default="vnni",
                    help="exact: float activations (slow; checks the assembly apart from the int8 activations' "
                    "error); empty: no work (times the step around its linears)")
    a = ap.parse_args()
    dec = registry.decoder(MODEL)
    assert dec.config.cache_len == S
    kind = KINDS["cpu"]
    ref, w, dense, eps, theta = weights(Path(dec.config.path))
    dev = Device(kind.driver, kind.staged_readback)
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        obj = build_object(Path(tmp), a.kernel)
        text = step_module(obj, a.groups, eps, theta)
        print(f"[step] compiling the Q4_1 step ({len(text) / 1e6:.1f} MB of MLIR)", file=sys.stderr, flush=True)
        step = dev.load(compile_module(text, kind.target, kind.compile_flags, "cpu")[0], "step")
        print("[step] compiling the same step with float32 linears", file=sys.stderr, flush=True)
        dense_step = dev.load(compile_module(step_module(None, 0, eps, theta), kind.target, kind.compile_flags, "cpu")[0],
                        "step")
    try:
        up_w = [dev.upload(x) for x in w]
        # -- check: a prompt stepped token by token against transformers on the same weights
        ids = np.random.default_rng(0).integers(3, V, a.tokens).astype(np.int32)
        with torch.no_grad():
            want = ref(torch.from_numpy(ids.astype(np.int64))[None]).logits[0].numpy()
        caches = [dev.upload(np.zeros((KV, S, HD), np.float32)) for _ in range(2 * L)]
        errs, same = [], 0
        for t, tok in enumerate(ids):  # (the caches stay on the device between steps)
            res = step(*up_w, dev.upload(np.array([tok], np.int32)), dev.upload(np.array([t], np.int32)), *caches)
            logits = dev.readback(res[0])
            caches = list(res[1:])
            errs.append(float(np.max(np.abs(logits - want[t])) / np.max(np.abs(want[t]))))
            print(f"  position {t}: relative error {errs[-1]:.2e}", file=sys.stderr)
            same += int(np.argmax(logits) == np.argmax(want[t]))
        print(f"check: {a.tokens} positions, max |logits - transformers| / max |transformers| "
              f"{max(errs):.2e}; greedy token equal at {same}/{a.tokens}")
        # -- timing: agentc's float32 step beside the Q4_1 step, at position 100
        all_w = list(dec.all_group.values())
        f32_text = export_function(dec.decode, [*all_w, np.zeros(1, np.int32), np.zeros(1, np.int32),
                                                *[np.zeros((1, KV, S, HD), np.float32)] * (2 * L)],
                                   "decode", list(dec.all_group), {"model": MODEL, "experiment": "cpu-ukernel-step"})
        print("[step] compiling agentc's float32 step", file=sys.stderr, flush=True)
        f32 = dev.load(compile_module(f32_text, kind.target, kind.compile_flags, "cpu")[0], "decode")
        rng = np.random.default_rng(1)
        f32_args = [dev.upload(x) for x in all_w] + [dev.upload(np.array([7], np.int32)),
                                                     dev.upload(np.array([100], np.int32))]
        f32_args += [dev.upload(rng.standard_normal((1, KV, S, HD)).astype(np.float32)) for _ in range(2 * L)]
        q_args = up_w + [dev.upload(np.array([7], np.int32)), dev.upload(np.array([100], np.int32))]
        cache_args = [dev.upload(rng.standard_normal((KV, S, HD)).astype(np.float32)) for _ in range(2 * L)]
        q_args += cache_args
        d_args = [dev.upload(x) for x in dense] + q_args[len(w):]
        stats = interleaved([lambda: f32(*f32_args), lambda: dense_step(*d_args), lambda: step(*q_args)], budget_s=4.0,
                            rounds=5)
        f, sf, q = (st.median_s for st in stats)
        q_bytes = sum(x.nbytes for x in w[2:])  # the table is read one row a step
        print(f"agentc float32 step: {f * 1e3:.2f} ms ({1 / f:.1f} tok/s); Q4_1 step: {q * 1e3:.2f} ms "
              f"({1 / q:.1f} tok/s, {q_bytes / 1e6:.0f} MB of weights); {f / q:.2f}x")
        print(f"the same assembled step with float32 linears (IREE's code): {sf * 1e3:.2f} ms ({1 / sf:.1f} tok/s)")
        gen = generation(dev, f32, f32_args, step, q_args, len(w))
        for name, ms in gen.items():
            print(f"generation of {TOKENS} tokens, ms per token (median of {ROUNDS}): {name} {ms:.2f} ({1e3 / ms:.1f} tok/s)")
        print(json.dumps({"f32_ms": round(f * 1e3, 3), "assembled_f32_ms": round(sf * 1e3, 3),
                          "q4_1_ms": round(q * 1e3, 3), "speedup": round(f / q, 3),
                          "max_rel_err": max(errs), "greedy_equal": f"{same}/{a.tokens}",
                          "groups": a.groups, "kernel": a.kernel,
                          "generation_ms_per_token": {k: round(v, 3) for k, v in gen.items()}}))
    finally:
        dev.close()
    print(f"load average {load:.2f} -> {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
