"""Compare two build directories of the same agent, file by file: what a refactoring of the
compiler must leave unchanged.

    python scripts/compare_builds.py OLD_BUILD NEW_BUILD

- plan.json: identical, or (when CP-SAT stopped at its time limit, gap > 0) the same
  operators, inputs, outputs and devices with only start/end times differing;
- weights/*.irpa: identical bytes;
- <device>.mlir (the IREE input): equal when parsed and printed again without locations;
- <device>.vmfb: identical bytes, or identical when both modules are compiled again with
  source maps and debug symbols stripped (the bytes then differ only in recorded source
  lines);
- agent.mlir / operators.mlir: reported (their text changes with how the IR is printed).

Prints one line per file and ends with `unchanged=1` or `unchanged=0`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def _norm_iree(text: str) -> str:
    from iree.compiler import ir

    with ir.Context():
        return ir.Module.parse(text).operation.get_asm()


def _vmfb_stripped(text: str) -> bytes:
    import iree.compiler as ic

    from agentc.devices import KINDS

    kind = KINDS["cpu"]
    flags = list(kind.compile_flags) + ["--iree-vm-bytecode-module-strip-source-map=true",
                                        "--iree-llvmcpu-debug-symbols=false"]
    return ic.compile_str(text, target_backends=[kind.target], extra_args=flags)


def _plan_ops(plan: dict) -> list:
    return [(o["name"], o["kind"], o["device"], o["inputs"], o["outputs"], o["attrs"], o["callee"])
            for o in plan["ops"]]


def compare(old: Path, new: Path) -> bool:
    same = True

    def say(name: str, verdict: str, ok: bool) -> None:
        nonlocal same
        same &= ok
        print(f"{name:<34} {verdict}")

    a, b = (json.loads((d / "plan.json").read_text()) for d in (old, new))
    if a == b:
        say("plan.json", "identical", True)
    elif _plan_ops(a) == _plan_ops(b) and {k: v for k, v in a.items() if k not in ("ops", "placement")} == \
            {k: v for k, v in b.items() if k not in ("ops", "placement")}:
        gap = max(a["placement"]["gap"], b["placement"]["gap"])
        say("plan.json", f"same operators and devices; schedule times differ (solver gap {gap:.2%})", gap > 0)
    else:
        say("plan.json", "DIFFERS", False)
    for f in sorted((old / "weights").glob("*.irpa")):
        g = new / "weights" / f.name
        say(f"weights/{f.name}", "identical" if g.is_file() and f.read_bytes() == g.read_bytes() else "DIFFERS",
            g.is_file() and f.read_bytes() == g.read_bytes())
    for f in sorted(old.glob("*.vmfb")):
        mlir_a, mlir_b = (d / f"{f.stem}.mlir" for d in (old, new))
        ir_same = _norm_iree(mlir_a.read_text()) == _norm_iree(mlir_b.read_text())
        say(f"{f.stem}.mlir", "equal without locations" if ir_same else "DIFFERS", ir_same)
        if f.read_bytes() == (new / f.name).read_bytes():
            say(f.name, "identical", True)
        else:
            stripped = _vmfb_stripped(mlir_a.read_text()) == _vmfb_stripped(mlir_b.read_text())
            say(f.name, "identical with source maps and debug symbols stripped" if stripped else "DIFFERS",
                stripped)
    for name in ("agent.mlir", "operators.mlir"):
        ident = (old / name).read_bytes() == (new / name).read_bytes()
        print(f"{name:<34} {'identical' if ident else 'text differs (printed differently)'}")
    return same


if __name__ == "__main__":
    ok = compare(Path(sys.argv[1]), Path(sys.argv[2]))
    print(f"unchanged={int(ok)}")
    sys.exit(0 if ok else 1)
