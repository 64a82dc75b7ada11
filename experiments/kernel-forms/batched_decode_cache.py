"""Why a batched decode step (agentc/models/batched.py) stops paying past B = 4 on this CPU.

Times, side by side on this machine's CPU through IREE (SmolLM2-135M's architecture, random
weights, 256-position cache):
- the step as agentc exports it (logits and both caches returned whole, stacked);
- the same step returning its 30 layers' caches unstacked;
- the same step returning only its logits (what an in-place cache would leave to write);
- one layer's batched step alone, at B = 1, 4, 8, 16.

    python experiments/kernel-forms/batched_decode_cache.py
"""

from __future__ import annotations

import numpy as np
import torch

from agentc.bench import batching as bench
from agentc.bench.batching_run import measure
from agentc.bench.timing import Device
from agentc.build.iree_compile import compile_module
from agentc.devices import KINDS
from agentc.models import batched, registry
from agentc.models.export import export_function


def _step_variants(model, weights):
    def logits_only(*a):
        return batched.decode(model, *a)[0]

    def unstacked(*a):
        stack = torch.stack
        torch.stack = list  # the layers' caches as they come, one result each
        try:
            logits, ks, vs, _ = batched.decode(model, *a)
        finally:
            torch.stack = stack
        return (logits, *ks, *vs)

    out = []
    for b in (4, 8):
        k = bench._llm_kernels(b, "cpu")["llm_decode_step"]
        argv = k.args
        out.append(("step as exported", b, k.text, k.function, argv))
        for name, f in (("caches unstacked", unstacked), ("logits only", logits_only)):
            sym = f"{name.replace(' ', '_')}_b{b}"
            out.append((name, b, export_function(f, argv, sym, list(weights), {"experiment": name}), sym, argv))
    return out


def _layer_variants(model):
    c, S = model.config, model.config.cache_len
    layer = list(model.groups[f"{c.name}/l0"].values())
    rng = np.random.default_rng(0)

    def one_layer(*a):
        *w, x, cos, sin, pos, kc, vc = a
        slots = torch.arange(S, dtype=torch.int32)
        here = (slots[None] == pos[:, None])[:, None, :, None]
        bias = torch.where(slots[None] <= pos[:, None], 0.0, -1e9)[:, None]

        def attend(q, k, v):
            k2, v2 = torch.where(here, k, kc), torch.where(here, v, vc)
            return model._attention(q, k2, v2, bias), k2, v2

        return model._layer(w, x, cos, sin, attend)

    out = []
    for b in (1, 4, 8, 16):
        cos = rng.standard_normal((b, 1, 1, c.head_dim)).astype(np.float32)
        kc = rng.standard_normal((b, c.kv_heads, S, c.head_dim)).astype(np.float32)
        argv = [*layer, rng.standard_normal((b, 1, c.dim)).astype(np.float32), cos, cos.copy(),
                np.full(b, 100, np.int32), kc, kc.copy()]
        sym = f"layer_b{b}"
        out.append(("one layer", b, export_function(one_layer, argv, sym, [f"w{i}" for i in range(len(layer))],
                                                    {"experiment": "one layer"}), sym, argv))
    return out


def main() -> None:
    model = registry.decoder(bench.LLM)
    kind = KINDS["cpu"]
    cases = _step_variants(model, model.all_group) + _layer_variants(model)
    entries = [(name, b, compile_module(text, kind.target, kind.compile_flags, "cpu")[0], fn, argv)
               for name, b, text, fn, argv in cases]
    dev = Device(kind.driver, kind.staged_readback)
    try:
        labels, stats = measure(dev, entries, 1.0)
    finally:
        dev.close()
    for (name, b), st in zip(labels, stats):
        print(f"{name:<18} B={b:<3} {st.median_s * 1e3:9.2f} ms")


if __name__ == "__main__":
    main()
