"""How many dispatches one function of a device module issues per call, by kind, as IREE
forms them (`iree-compile --compile-to=flow`), without a GPU.

A batch-1 decode step on a GPU is a few hundred tiny kernels, each a few microseconds
whatever its size (docs/results/decode/README.md), so the count is what a form or an IREE
flag has to cut. Dispatches inside a loop (a decode chunk) are counted once per trip.

    python experiments/kernel-forms/dispatch_count.py BUILD/cuda.mlir FUNCTION \\
        [--iree-flag=--iree-dispatch-creation-enable-aggressive-fusion ...]

FUNCTION is the function's public name, e.g. smollm2_135m_random_192x256__decode_x31.
Last line `dispatches=N`.
"""

from __future__ import annotations

import argparse
import collections
import re
import subprocess
import sys
import tempfile
from pathlib import Path

_DISPATCH = re.compile(r"flow\.dispatch @[\w$]+::@([\w$]+)")


def body(flow: str, function: str) -> str:
    """The text of `function` in a flow-level module (a util.func or func.func)."""
    m = re.search(rf"\n  (?:util|func)\.func (?:public )?@{re.escape(function)}\(", flow)
    if m is None:
        raise SystemExit(f"dispatch_count: no function @{function} in the module")
    end = re.search(r"\n  (?:util|func)\.func ", flow[m.end():])
    return flow[m.start():m.end() + end.start() if end else None]


def kind(dispatch: str) -> str:
    """A dispatch's root kind and shape: `..._dispatch_12_matmul_1x576x576_f32` -> `matmul_1x576x576_f32`."""
    return re.sub(r"^.*_dispatch_\d+_", "", dispatch)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("module", help="a device module's MLIR (a build's cuda.mlir)")
    p.add_argument("function")
    p.add_argument("--target", default="cuda", help="IREE target backend (cuda, llvm-cpu, vulkan-spirv)")
    p.add_argument("--iree-flag", action="append", default=[], help="extra iree-compile flag (repeatable)")
    args = p.parse_args(argv)
    flags = ["--iree-cuda-target=sm_80"] if args.target == "cuda" else []
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "flow.mlir"
        run = subprocess.run(["iree-compile", args.module, f"--iree-hal-target-backends={args.target}", *flags,
                              *args.iree_flag, "--compile-to=flow", "-o", str(out)], check=False, capture_output=True,
                             text=True)
        if run.returncode != 0:
            print(run.stderr.strip().splitlines()[-1] if run.stderr.strip() else "iree-compile failed", file=sys.stderr)
            return 1
        text = body(out.read_text(), args.function)
    loop = text.find("scf.for")
    sites = [(m.start() > loop >= 0, kind(m.group(1))) for m in _DISPATCH.finditer(text)]
    per_call = collections.Counter(k for _, k in sites)
    print(f"{len(sites)} dispatch sites, {sum(inside for inside, _ in sites)} inside the loop; by kind:")
    for k, n in per_call.most_common():
        print(f"{n:6d}  {k}")
    print(f"dispatches={len(sites)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
