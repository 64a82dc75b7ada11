"""IR transformations, one pass per file; `run_pass` runs a Python pass through MLIR's
PassManager so the IR is verified after it, like any upstream pass."""

from __future__ import annotations

from torch_mlir import ir, passmanager


class PassFailure(Exception):
    pass


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
