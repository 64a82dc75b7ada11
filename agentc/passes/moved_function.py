"""Moving an exported function into the operator module (decompose-agent-ops' kernels)."""

from __future__ import annotations

from torch_mlir import ir

from agentc.ir import IMPL


def move_function(text: str, name: str, new_name: str, module_body: ir.Block, defined) -> list:
    """The function `name` of the exporter's module `text`, made private, marked a kernel
    implementation, renamed `new_name` (SymbolTable: its uses too) and appended to the
    module, after the declarations it needs that `defined` (symbol names) lacks: functions
    a device module defines (agentc.cpu_kernels.gemv's). Returns the ops appended, the
    function last."""
    parsed = ir.Module.parse(text)
    fop = ir.SymbolTable(parsed.operation)[name]
    ir.SymbolTable.replace_all_symbol_uses(name, new_name, parsed.operation)
    ir.SymbolTable.set_symbol_name(fop, new_name)
    fop.attributes["sym_visibility"] = ir.StringAttr.get("private")
    fop.attributes[IMPL] = ir.UnitAttr.get()  # what a device runs: its calls are not operators
    moved = [d for d in parsed.body.operations if d.operation.name == "func.func" and not len(d.regions[0].blocks)
             and ir.StringAttr(d.attributes["sym_name"]).value not in defined] + [fop]
    for op in moved:
        module_body.append(op.operation)
    return moved
