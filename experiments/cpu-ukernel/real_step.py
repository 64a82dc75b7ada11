"""SmolLM2-135M-Instruct's real weights, as its packaged GGUF keeps them (Q4_1 linears, a
Q8_0 embedding that is also the head), through split_step.py's step, generating greedy text
beside llama.cpp (the same file) and transformers (its float32 dequantization).

The generic import reads the GGUF through transformers, which dequantizes every tensor and
undoes llama.cpp's reordering of the rotary rows. Here each linear's float32 weight is
matched, row by row, to the GGUF tensor it came from, and that tensor's blocks (values,
scales, minima: exactly what llama.cpp reads) are taken in the import's row order and packed
for the kernels. Prompt tokens are stepped one at a time (no prefill kernel here); the
generation's tokens/s is timed from the first generated token.

    python experiments/cpu-ukernel/real_step.py [--question TEXT] [--tokens N]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from gemv_ukernel import build_object, pack, pack_q8_0
from split_step import assemble, call_args, capture, plan

from agentc.bench.timing import Device
from agentc.build.iree_compile import compile_module
from agentc.devices import KINDS

MODEL = "smollm2-135m@192x256"


def gguf_blocks(path: Path) -> dict:
    """Every Q4_1 / Q8_0 tensor of the file: {name: (form, values (rows, blocks, 32), scales,
    minima or None, float32 dequantization (rows, cols))}."""
    import gguf

    out = {}
    for t in gguf.GGUFReader(str(path)).tensors:
        raw = np.asarray(t.data)
        rows = raw.shape[0]
        if t.tensor_type.name == "Q4_1":
            b = raw.reshape(rows, -1, 20)
            d = b[..., 0:2].copy().view(np.float16)[..., 0].astype(np.float32)
            m = b[..., 2:4].copy().view(np.float16)[..., 0].astype(np.float32)
            qs = b[..., 4:]
            q = np.concatenate([qs & 15, qs >> 4], axis=-1)
            deq = (q.astype(np.float32) * d[..., None] + m[..., None]).reshape(rows, -1)
            out[t.name] = ("q4_1", q, d, m, deq)
        elif t.tensor_type.name == "Q8_0":
            b = raw.reshape(rows, -1, 34)
            d = b[..., 0:2].copy().view(np.float16)[..., 0].astype(np.float32)
            q = b[..., 2:].copy().view(np.int8)
            out[t.name] = ("q8_0", q, d, None, (q.astype(np.float32) * d[..., None]).reshape(rows, -1))
    return out


def match(w: np.ndarray, blocks: dict, rows_of: dict):
    """(form, q, d, m) of the GGUF tensor whose rows are w's, in w's row order. `rows_of`:
    each tensor's {row bytes: row}, made once per tensor as the weights are matched."""
    for name, (form, q, d, m, deq) in blocks.items():
        if deq.shape != w.shape:
            continue
        if name not in rows_of:
            rows_of[name] = {row.tobytes(): i for i, row in enumerate(deq)}
        where = rows_of[name]
        perm = [where.get(row.tobytes()) for row in w]
        if all(p is not None for p in perm):
            return form, q[perm], d[perm], None if m is None else m[perm]
    raise LookupError(f"no GGUF tensor holds a weight of shape {w.shape}")


def main() -> None:
    from agentc.bench.decode import _LlamaCpp
    from agentc.models import assets, registry

    ap = argparse.ArgumentParser()
    ap.add_argument("--question", default="Write one sentence about the sea at night.")
    ap.add_argument("--tokens", type=int, default=32)
    a = ap.parse_args()
    dec = registry.decoder(MODEL)
    c = dec.config
    names = list(dec.all_group)
    weights = {n: np.array(v, np.float32) for n, v in dec.all_group.items()}
    examples = [torch.from_numpy(v) for v in weights.values()] + [torch.tensor([5], dtype=torch.int32),
                                                                  torch.tensor([3], dtype=torch.int32)]
    examples += [torch.zeros(1, c.kv_heads, c.cache_len, c.head_dim) for _ in range(2 * c.layers)]
    print("[real] capturing the step", file=sys.stderr, flush=True)
    gm, values = capture(dec.decode, examples)
    placeholders = [n for n in gm.graph.nodes if n.op == "placeholder"]
    steps = plan(gm, set(placeholders[:len(names)]))
    blocks = gguf_blocks(Path(assets.smollm2_gguf()))
    q4, forms, rows_of = {}, {}, {}
    for s, (kind, group) in enumerate(steps):
        if kind != "linears":
            continue
        parts = [match(weights[names[placeholders.index(n.args[1])]], blocks, rows_of) for n in group]
        form = parts[0][0]
        assert all(p[0] == form for p in parts), "a group of linears in two forms"
        q, d = np.concatenate([p[1] for p in parts]), np.concatenate([p[2] for p in parts])
        forms[s] = form
        q4[s] = [pack(q), d.reshape(-1), np.concatenate([p[3] for p in parts]).reshape(-1)] if form == "q4_1" \
            else pack_q8_0(q, d)
    print(f"[real] {len(q4)} dispatches: {sum(f == 'q4_1' for f in forms.values())} Q4_1, "
          f"{sum(f == 'q8_0' for f in forms.values())} Q8_0", file=sys.stderr, flush=True)
    ids = dec.chat_ids(a.question)
    llama = _LlamaCpp(Path(assets.smollm2_gguf())).request(ids)["ids"][:a.tokens]
    with torch.no_grad():
        ref = dec.reference_model.generate(torch.tensor([ids]), max_new_tokens=a.tokens, do_sample=False,
                                           attention_mask=torch.ones(1, len(ids), dtype=torch.long))
    ref = ref[0, len(ids):].tolist()
    kind = KINDS["cpu"]
    dev = Device(kind.driver, kind.staged_readback)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            text, sources = assemble(gm, values, steps, build_object(Path(tmp)), 4, forms)
            print("[real] compiling", file=sys.stderr, flush=True)
            step = dev.load(compile_module(text, kind.target, kind.compile_flags, "cpu")[0], "step")
        w_up = {src: dev.upload(q4[src[1]][src[2]] if src[0] == "q4" else weights[names[src[1]]])
                for src in sources if src[0] == "q4" or src[1] < len(names)}
        n_w = len(names)

        def generate(forced=None):
            """The prompt stepped a token at a time, then a.tokens tokens: greedy, or `forced`
            (teacher forcing: the step's argmax compared with each forced token, which is fed on).
            -> (argmax at each generated position, tok/s from the first)."""
            caches = [dev.upload(np.zeros((1, c.kv_heads, c.cache_len, c.head_dim), np.float32))
                      for _ in range(2 * c.layers)]
            out, t_first, tok = [], None, ids[0]
            for pos in range(len(ids) + (a.tokens if forced is None else len(forced)) - 1):
                acts = [np.array([tok], np.int32), np.array([pos], np.int32)]
                res = step(*call_args(dev, sources, w_up, [*acts, *caches], n_w))
                caches = list(res[1:1 + 2 * c.layers])
                if pos + 1 < len(ids):
                    tok = ids[pos + 1]
                    continue
                out.append(int(np.argmax(dev.readback(res[0]))))
                tok = out[-1] if forced is None else forced[len(out) - 1]
                if t_first is None:
                    t_first = time.perf_counter()
            return out, (len(out) - 1) / (time.perf_counter() - t_first)

        out, rate = generate()
        top1 = {name: f"{sum(x == y for x, y in zip(generate(seq)[0], seq))}/{len(seq)}" for name, seq in
                (("transformers", ref), ("llama.cpp", llama))}
    finally:
        dev.close()

    def agree(other, mine=out):
        return next((i for i, (x, y) in enumerate(zip(mine, other)) if x != y), min(len(mine), len(other)))

    print(f"prompt: {len(ids)} tokens; {a.tokens} greedy tokens, end-of-turn ignored (transformers stops at it: "
          f"{len(ref)} tokens)")
    print(f"Q4_1 step ({rate:.1f} tok/s): {dec.detokenize(out)!r}")
    print(f"llama.cpp (same GGUF):   {dec.detokenize(llama)!r}")
    print(f"transformers (float32):  {dec.detokenize(ref)!r}")
    print(f"leading tokens equal: Q4_1 step and llama.cpp {agree(llama)}/{a.tokens}, Q4_1 step and transformers "
          f"{agree(ref)}/{a.tokens}, llama.cpp and transformers {agree(ref, llama)}/{a.tokens}")
    print(f"teacher-forced on each system's own text, the step's next token equal: transformers' "
          f"{top1['transformers']}, llama.cpp's {top1['llama.cpp']}")


if __name__ == "__main__":
    main()
