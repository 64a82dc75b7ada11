"""Where a CPU decode step's time goes: SmolLM2-135M's decode step (random weights, step
granularity, budget 192/256) compiled once, timed on IREE's `local-task` driver (the
runtime's: a task system over this machine's cores) and on `local-sync` (one thread, no task
system), beside the step's dispatch count and its weight-streaming bound.

    python experiments/cpu-decode/drivers.py [--budget 4] [--flag=IREE_FLAG ...] [--runtime-flag=FLAG ...]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys

import numpy as np

LLM = "smollm2-135m-random@192x256"


def dispatches(text: str, flags) -> int:
    """Dispatches the step issues per call, counted in IREE's stream IR."""
    out = subprocess.run(["iree-compile", "-", "--compile-to=stream", "--iree-hal-target-device=local",
                          "--iree-hal-local-target-device-backends=llvm-cpu", *flags],
                         input=text, capture_output=True, text=True, check=True).stdout
    return len(re.findall(r"stream\.cmd\.dispatch", out))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--budget", type=float, default=4.0)
    p.add_argument("--flag", action="append", default=[], help="iree-compile flag")
    p.add_argument("--runtime-flag", action="append", default=[], help="IREE runtime flag, e.g. --task_worker_spin_us=50")
    p.add_argument("--drivers", default="local-task,local-sync")
    args = p.parse_args()
    if args.runtime_flag:
        import iree.runtime as rt

        rt.flags.parse_flags(*args.runtime_flag)  # before any device exists
    from agentc.bench.timing import Device, interleaved
    from agentc.build.iree_compile import compile_module
    from agentc.devices import KINDS
    from agentc.models import kernels

    step = next(k for k in kernels.decoder_kernels(LLM, "step") if k.symbol.endswith("__decode"))
    kind = KINDS["cpu"]
    flags = tuple(kind.compile_flags) + tuple(args.flag)
    vmfb, _ = compile_module(step.impl_text, kind.target, flags, "cpu")
    weights = list(step.params.values())
    nbytes = sum(a.nbytes for a in weights)
    from agentc.models import registry

    c = registry.decoder(LLM).config
    caches = [np.zeros((1, c.kv_heads, c.cache_len, c.head_dim), np.float32) for _ in range(2 * c.layers)]
    acts = [np.array([17], np.int32), np.array([160], np.int32), *caches]
    n_disp = dispatches(step.impl_text, args.flag)
    load = os.getloadavg()[0]
    rows = []
    for driver in args.drivers.split(","):
        dev = Device(driver, kind.staged_readback)
        fn = dev.load(vmfb, step.impl_name)
        up = [dev.upload(a) for a in weights + acts]
        (st,) = interleaved([lambda fn=fn, up=up: fn(*up)], budget_s=args.budget, rounds=3)
        rows.append((driver, st.median_s * 1e3))
        del fn, up
        dev.close()
    print(f"load average {load:.2f} -> {os.getloadavg()[0]:.2f}; flags: {' '.join(args.flag) or 'default'}; "
          f"runtime flags: {' '.join(args.runtime_flag) or 'default'}")
    print(f"decode step: {n_disp} dispatches, {nbytes / 1e6:.0f} MB of weights")
    for driver, ms in rows:
        print(f"{driver:10s} {ms:7.2f} ms/step  ({nbytes / ms / 1e6:.1f} GB/s of weights; "
              f"{ms * 1e3 / n_disp:.0f} us per dispatch)")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
