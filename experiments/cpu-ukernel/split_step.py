"""The generic import's decode step, split at its linears, with the linears as Q4_1 kernel
dispatches (issue 23, item 2: the step of decode_step.py, made from transformers' own code
instead of written out for one architecture).

torch.export captures `decode` (transformers' layers called with agentc's weights as
arguments); each `aten.linear` whose weight is an argument becomes a dispatch of
q4_1_gemv.c, the linears reading the same value as one dispatch over their stacked rows
(q, k, v; gate, up), and every run of other operators between them a function exported
through torch-mlir. One IREE function calls them in the graph's order. Nothing in it is
specific to an architecture: it is checked here on SmolLM2's (Llama) and a tiny Qwen2's
random checkpoints against transformers holding the same dequantized weights.

    python experiments/cpu-ukernel/split_step.py [--model NAME] [--kernel vnni|exact]
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from decode_step import private_func, quantize_q4_1
from gemv_ukernel import FORMS, HEADER, build_object, dispatch, executable

from agentc.bench.timing import Device, interleaved
from agentc.build.iree_compile import compile_module
from agentc.devices import KINDS
from agentc.models.split_linears import capture, mlir_type, piece_module


def plan(gm, weight_nodes: set):
    """The graph as a list of steps: ("piece", [nodes]) and ("linears", [linear nodes reading
    one value]), in an order that computes every value before its use."""
    nodes = [n for n in gm.graph.nodes if n.op not in ("placeholder", "output")]
    def quantizable(n):  # a weight argument, its rows whole blocks for the kernel, a bias argument or none
        if n.target != torch.ops.aten.linear.default or n.args[1] not in weight_nodes:
            return False
        bias = n.args[2] if len(n.args) > 2 else None
        return n.args[1].meta["val"].shape[-1] % 64 == 0 and (bias is None or bias in weight_nodes)

    linear = {n for n in nodes if quantizable(n)}
    by_input: dict = {}
    for n in linear:
        by_input.setdefault(n.args[0], []).append(n)
    steps, piece, done = [], [], set()
    for n in nodes:
        if n in done:
            continue
        if n in linear:
            if piece:
                steps.append(("piece", piece))
                piece = []
            group = sorted(by_input[n.args[0]], key=nodes.index)
            steps.append(("linears", group))
            done.update(group)
        else:
            piece.append(n)
    if piece:
        steps.append(("piece", piece))
    return steps


def call_args(dev, sources, fixed: dict, acts: list, n_w: int) -> list:
    """The step's arguments in `sources` order: `fixed` ones (weights, uploaded once), else
    this call's `acts` (the original arguments after the n_w weights; NumPy ones uploaded)."""
    out = []
    for src in sources:
        a = fixed[src] if src in fixed else acts[src[1] - n_w]
        out.append(dev.upload(a) if isinstance(a, np.ndarray) else a)
    return out


def export_piece(name: str, pm, examples) -> str:
    from torch_mlir import fx

    with torch.no_grad():
        module = fx.export_and_import(pm, *examples, output_type="linalg-on-tensors", func_name=name)
    return private_func(str(module), name)


def assemble(gm, values, steps, obj: Path, groups: int, forms: dict | None = None):
    """The step's MLIR and, per argument of its function, where its value comes from:
    ("arg", i) an original argument; ("q4", linear group, part) a stacked quantized weight
    (`forms`: step index -> "q4_1" (the default) or "q8_0")."""
    placeholders = [n for n in gm.graph.nodes if n.op == "placeholder"]
    out_node = next(n for n in gm.graph.nodes if n.op == "output")
    results = [r for r in torch.utils._pytree.tree_leaves(out_node.args[0])]
    name_of, funcs, aliases, body, exes = {}, [], [], [], []
    sig, sources = [], []
    linears = {n for kind, g in steps if kind == "linears" for n in g}
    for i, p in enumerate(placeholders):
        if p.users and all(u in linears for u in p.users):  # read only as a Q4_1 weight
            continue
        name_of[p] = f"%a{i}"
        sig.append(f"%a{i}: {mlir_type(values[p])}")
        sources.append(("arg", i))
    tmp = 0

    def fresh():
        nonlocal tmp
        tmp += 1
        return f"%t{tmp}"

    for s, (kind, nodes) in enumerate(steps):
        if kind == "piece":
            pm, ins, outs = piece_module(gm, nodes)
            if not outs:
                continue
            fname = f"piece{s}"
            text = export_piece(fname, pm, [values[v] for v in ins])
            aliases += [ln for ln in text.splitlines() if ln.startswith("#")]
            funcs.append("\n".join(ln for ln in text.splitlines() if not ln.startswith("#")))
            res = [fresh() for _ in outs]
            for v, r in zip(outs, res):
                name_of[v] = r
            in_t = ", ".join(mlir_type(values[v]) for v in ins)
            out_t = ", ".join(mlir_type(values[v]) for v in outs)
            body.append(f"    {', '.join(res)} = func.call @{fname}({', '.join(name_of[v] for v in ins)}) : "
                        f"({in_t}) -> ({out_t})")
            continue
        x = nodes[0].args[0]
        xv = values[x]
        k = xv.shape[-1]
        rows = [values[n.args[1]].shape[0] for n in nodes]
        n_all = sum(rows)
        ex = f"lin{s}"
        form = (forms or {}).get(s, "q4_1")
        exes.append(executable(ex, obj, n_all, k, -(-n_all // groups), form))
        qdm = []
        for part, t in zip("qdm", [f"tensor<{n_all * k // FORMS[form][1]}xi8>", f"tensor<{n_all * k // 32}xf32>",
                                   f"tensor<{n_all * k // 32}xf32>"]):
            qdm.append(f"%w{s}{part}")
            sig.append(f"%w{s}{part}: {t}")
            sources.append(("q4", s, "qdm".index(part)))
        flat = fresh()
        body.append(f"    {flat} = tensor.collapse_shape {name_of[x]} [[{', '.join(map(str, range(xv.dim())))}]] : "
                    f"{mlir_type(xv)} into tensor<{k}xf32>")
        y = fresh()
        body.append(dispatch(ex, n_all, k, y, *qdm, flat, form).rstrip("\n"))
        off = 0
        for n, r in zip(nodes, rows):
            sl, e = fresh(), fresh()
            body.append(f"    {sl} = tensor.extract_slice {y}[{off}] [{r}] [1] : tensor<{n_all}xf32> to tensor<{r}xf32>")
            shape = ", ".join(str(d) for d in values[n].shape)
            body.append(f"    {e} = tensor.expand_shape {sl} [[{', '.join(map(str, range(values[n].dim())))}]] "
                        f"output_shape [{shape}] : tensor<{r}xf32> into {mlir_type(values[n])}")
            if len(n.args) > 2 and n.args[2] is not None:  # + bias
                b, sum_ = fresh(), fresh()
                body.append(f"    {b} = tensor.expand_shape {name_of[n.args[2]]} [[{', '.join(map(str, range(values[n].dim())))}]] "
                            f"output_shape [{shape}] : tensor<{r}xf32> into {mlir_type(values[n])}")
                body.append(f"    {sum_} = arith.addf {e}, {b} : {mlir_type(values[n])}")
                e = sum_
            name_of[n] = e
            off += r
    ret = [name_of[r] for r in results]
    types = [mlir_type(values[r]) for r in results]
    body.append(f"    return {', '.join(ret)} : {', '.join(types)}")
    text = (HEADER + "\n".join(dict.fromkeys(aliases)) + "\nmodule {\n" + "".join(exes) + "\n".join(funcs)
            + f"\n  func.func @step({', '.join(sig)}) -> ({', '.join(types)}) {{\n" + "\n".join(body) + "\n  }\n}\n")
    return text, sources


def main() -> None:
    from agentc.models import registry

    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="smollm2-135m-random@192x256")
    ap.add_argument("--arch", help="instead of --model: a random checkpoint of this architecture "
                    "(agentc.models.hf.random_checkpoint), written to a temporary directory")
    ap.add_argument("--kernel", choices=("vnni", "exact"), default="vnni")
    ap.add_argument("--tokens", type=int, default=6)
    ap.add_argument("--groups", type=int, default=4)
    a = ap.parse_args()
    if a.arch:
        from agentc.models.hf import random_checkpoint

        a.model = str(random_checkpoint.write(a.arch, Path(tempfile.mkdtemp()) / a.arch,
                                              random_checkpoint.Shape(ffn=128, vocab=4096, init=0.05)))
    dec = registry.decoder(a.model)
    c = dec.config
    names = list(dec.all_group)
    weights = {n: np.array(v, np.float32) for n, v in dec.all_group.items()}
    # every linear's weight rounded to Q4_1 (the reference holds the same values)
    examples = [torch.from_numpy(v) for v in weights.values()] + [torch.tensor([5], dtype=torch.int32),
                                                                  torch.tensor([3], dtype=torch.int32)]
    cache = np.zeros((1, c.kv_heads, c.cache_len, c.head_dim), np.float32)
    examples += [torch.from_numpy(cache.copy()) for _ in range(2 * c.layers)]  # distinct: export dedupes aliased inputs
    print(f"[split] capturing {a.model}'s decode step", file=sys.stderr, flush=True)
    gm, values = capture(dec.decode, examples)
    placeholders = [n for n in gm.graph.nodes if n.op == "placeholder"]
    weight_nodes = set(placeholders[:len(names)])
    steps = plan(gm, weight_nodes)
    lin_groups = [g for k, g in steps if k == "linears"]
    print(f"[split] {sum(len(g) for g in lin_groups)} linears in {len(lin_groups)} dispatches, "
          f"{sum(1 for k, _ in steps if k == 'piece')} pieces", file=sys.stderr, flush=True)
    q4: dict[int, list[np.ndarray]] = {}
    rounded = set()
    for s, (kind, group) in enumerate(steps):
        if kind != "linears":
            continue
        idx = [placeholders.index(n.args[1]) for n in group]
        qdm, deq = quantize_q4_1(np.concatenate([weights[names[i]] for i in idx]))
        q4[s] = qdm
        off = 0
        for i in idx:
            rows = weights[names[i]].shape[0]
            weights[names[i]] = deq[off:off + rows]
            rounded.add(names[i])
            off += rows
    kind = KINDS["cpu"]
    dev = Device(kind.driver, kind.staged_readback)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            obj = build_object(Path(tmp), a.kernel)
            print("[split] exporting the pieces", file=sys.stderr, flush=True)
            text, sources = assemble(gm, values, steps, obj, a.groups)
            print(f"[split] compiling ({len(text) / 1e6:.1f} MB of MLIR)", file=sys.stderr, flush=True)
            step = dev.load(compile_module(text, kind.target, kind.compile_flags, "cpu")[0], "step")
        w_up = {}
        for src in sources:
            if src[0] == "q4":
                w_up[src] = dev.upload(q4[src[1]][src[2]])
            elif src[1] < len(names):
                w_up[src] = dev.upload(weights[names[src[1]]])
        # check: tokens stepped from an empty cache against transformers with the same weights
        ref = dec.reference_model
        sd = ref.state_dict()
        with torch.no_grad():
            fam = dec.family
            for n in rounded:  # all_group's names: l<i>.<in the layer>, else <in the model's root>
                m = re.match(r"l(\d+)\.(.*)", n)
                key = f"{fam.root}.{fam.layers}.{m[1]}.{m[2]}" if m else f"{fam.root}.{n}"
                v = torch.from_numpy(weights[n])
                conv1d = type(ref.get_submodule(key.rsplit(".", 1)[0])).__name__ == "Conv1D"
                sd[key].copy_(v.T if conv1d else v)  # GPT-2's Conv1D keeps W as (in, out)
        ids = np.random.default_rng(0).integers(3, c.vocab, a.tokens)
        with torch.no_grad():
            want = ref(torch.from_numpy(ids)[None]).logits[0].numpy()
        caches = [cache] * (2 * c.layers)
        errs, same = [], 0
        n_w = len(names)
        for t, tok in enumerate(ids):
            acts = [np.array([tok], np.int32), np.array([t], np.int32), *caches]
            res = step(*call_args(dev, sources, w_up, acts, n_w))
            logits = dev.readback(res[0]).reshape(-1)
            caches = list(res[1:1 + 2 * c.layers])  # (they stay on the device between steps)
            errs.append(float(np.max(np.abs(logits - want[t])) / np.max(np.abs(want[t]))))
            print(f"  position {t}: relative error {errs[-1]:.2e}", file=sys.stderr)
            same += int(np.argmax(logits) == np.argmax(want[t]))
        print(f"check ({a.model}, kernel {a.kernel}): {a.tokens} positions, max relative error {max(errs):.2e}, "
              f"greedy equal {same}/{a.tokens}")
        acts = [np.array([7], np.int32), np.array([100], np.int32), *[cache] * (2 * c.layers)]
        args = call_args(dev, sources, w_up, acts, n_w)
        st = interleaved([lambda: step(*args)], budget_s=3.0, rounds=3)[0]
        print(f"step: {st.median_s * 1e3:.2f} ms ({1 / st.median_s:.1f} tok/s)")
    finally:
        dev.close()


if __name__ == "__main__":
    main()
