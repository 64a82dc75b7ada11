"""IR transformations, one pass per file, each registered here by its pipeline name.

A pass is a small dataclass whose fields are its options; `run_pass` runs it through MLIR's
PassManager, so the IR is verified after it like after any upstream pass. `run_pipeline`
runs a textual pipeline (`decompose-agent-ops{granularity=step},canonicalize`) as
`mlir-opt` would: agentc's passes by name, every other segment handed to the bindings'
own PassManager (a Python pass cannot be named inside an upstream pipeline string).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable

from torch_mlir import ir, passmanager

# pipeline name -> "module:Class"; each class has `from_options(dict[str, str])`.
PASSES = {
    "decompose-agent-ops": "agentc.passes.decompose_agent_ops:DecomposeAgentOps",
    "assign-devices": "agentc.passes.assign_devices:AssignDevices",
    "outline-device-modules": "agentc.passes.outline_device_modules:OutlineDeviceModules",
    "check-no-agent-ops": "agentc.passes.check_no_agent_ops:CheckNoAgentOps",
}


class PassFailure(Exception):
    pass


class PipelineError(ValueError):
    """A pipeline string that names no known pass or gives a bad option."""


def run_pass(module: ir.Module, pass_obj) -> None:
    pm = passmanager.PassManager("builtin.module")
    errors: list[BaseException] = []

    def run(op, p):
        try:
            pass_obj(op, p)
        except BaseException as e:  # noqa: BLE001 - surfaced below with its own type
            errors.append(e)
            p.signal_pass_failure()

    pm.add(run, name=type(pass_obj).__name__, argument=getattr(pass_obj, "NAME", ""))
    pm.enable_verifier(True)
    try:
        pm.run(module.operation)
    except ir.MLIRError as e:
        if errors:
            raise errors[0] from None
        raise PassFailure(f"{pass_obj.NAME}: {e}") from None
    if errors:
        raise errors[0]


def pass_class(name: str):
    module, _, cls = PASSES[name].partition(":")
    return getattr(importlib.import_module(module), cls)


def split_top_level(text: str, sep: str = ",") -> list[str]:
    """`a{x=1,y=2},b` -> ["a{x=1,y=2}", "b"]: separators inside braces or parentheses stay."""
    parts, depth, cur = [], 0, []
    for ch in text:
        if ch in "{(":
            depth += 1
        elif ch in "})":
            depth -= 1
        if ch == sep and depth == 0:
            parts.append("".join(cur).strip())
            cur = []
        else:
            cur.append(ch)
    if "".join(cur).strip():
        parts.append("".join(cur).strip())
    return parts


def parse_options(name: str, text: str) -> dict[str, str]:
    """`{a=1 b=x,y}` -> {"a": "1", "b": "x,y"} (mlir-opt's form: space-separated key=value)."""
    opts = {}
    for item in text.split():
        key, eq, value = item.partition("=")
        if not eq:
            raise PipelineError(f"{name}: option '{item}' is not key=value")
        opts[key] = value
    return opts


def parse_pipeline(text: str) -> list[tuple[str, object]]:
    """The pipeline as steps: ("agentc", pass object) or ("mlir", upstream pipeline text).
    Accepts a bare list or one wrapped in `builtin.module(...)`."""
    text = text.strip()
    if text.startswith("builtin.module(") and text.endswith(")"):
        text = text[len("builtin.module("):-1]
    steps: list[tuple[str, object]] = []
    for seg in split_top_level(text):
        name, brace, rest = seg.partition("{")
        name = name.strip()
        if name in PASSES:
            opts = parse_options(name, rest.rstrip("}")) if brace else {}
            try:
                steps.append(("agentc", pass_class(name).from_options(opts)))
            except (KeyError, TypeError, ValueError) as e:
                raise PipelineError(f"{name}: {e.args[0] if e.args else e}") from None
        elif steps and steps[-1][0] == "mlir":
            steps[-1] = ("mlir", f"{steps[-1][1]},{seg}")
        else:
            steps.append(("mlir", seg))
    return steps


def run_pipeline(module: ir.Module, text: str,
                 after_each: Callable[[str, ir.Module], None] | None = None) -> list:
    """Run a pipeline string on `module`; returns the agentc pass objects it ran (their
    side outputs, e.g. outline-device-modules' device modules). `after_each(name, module)`
    is called after every pass (--print-ir-after-all)."""
    ran = []
    for kind, step in parse_pipeline(text):
        if kind == "agentc":
            run_pass(module, step)
            ran.append(step)
            if after_each:
                after_each(step.NAME, module)
            continue
        for seg in split_top_level(step):
            pm = passmanager.PassManager.parse(f"builtin.module({seg})")
            pm.run(module.operation)
            if after_each:
                after_each(seg, module)
    return ran


def print_after(name: str, module: ir.Module, out=sys.stderr) -> None:
    print(f"// -----// IR Dump After {name} //----- //", file=out)
    print(module.operation.get_asm(), file=out)
