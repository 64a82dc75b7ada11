"""outline-device-modules: after placement, one IREE input module per device.

Each call in the operator IR carries its `agent.device` (assign-devices); each device module
holds the kernels placed there, with their weights turned into IREE parameters
(`util.global` = `#flow.parameter.named<"agentc"::"<group>/<param>">`): a device loads the
weights of the kernels placed on it, once, from the build's archives. One module per device, because IREE 3.13 cannot compile
one module spanning devices with separate memories.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from torch_mlir import ir

from agentc import store
from agentc.cpu_kernels import gemv, objects
from agentc.ir import IMPL
from agentc.ir.emit import op_name
from agentc.models.irpa import SCOPE
from agentc.models.kernels import impl_for
from agentc.passes.assign_devices import DEVICE, Unplaced
from agentc.passes.check_no_agent_ops import CheckNoAgentOps
from agentc.passes.options import check_options


@dataclass
class OutlineDeviceModules:
    """Reads each call's `agent.device` (assign-devices). Option: each device's runtime."""

    # device -> runtime (cpu, vulkan, cuda); a device named after its runtime needs none.
    # A kernel with a variant for the runtime (@<kernel>_impl__<runtime>) uses it there.
    runtimes: dict[str, str | None] = field(default_factory=dict)
    NAME = "outline-device-modules"

    @classmethod
    def from_options(cls, opts: dict[str, str]) -> OutlineDeviceModules:
        """`outline-device-modules{runtimes=gpu0:cuda,cpu:cpu}`."""
        check_options(opts, ('runtimes',))
        pairs = [r.partition(":") for r in filter(None, opts.get("runtimes", "").split(","))]
        if any(not colon for _, colon, _ in pairs):
            raise ValueError("runtimes: expected DEVICE:RUNTIME pairs")
        return cls({d: r for d, _, r in pairs})

    def __post_init__(self):
        self.device_modules: dict[str, str] = {}
        self.device_weights: dict[str, list[str]] = {}  # device -> the parameter keys its module loads

    def __call__(self, module_op: ir.Operation, pass_=None) -> None:
        body = module_op.regions[0].blocks[0]
        funcs = {ir.StringAttr(o.attributes["sym_name"]).value: o for o in body.operations
                 if o.operation.name == "func.func"}
        per_device: dict[str, set[str]] = {}
        for f in funcs.values():
            if "agent.kernel" in f.attributes or IMPL in f.attributes:
                continue
            for block in f.regions[0].blocks:
                for op in block.operations:
                    o = op.operation
                    if o.name != "func.call":
                        continue
                    if DEVICE not in o.attributes:
                        raise Unplaced(f"operator '{op_name(o)}' has no {DEVICE} (run assign-devices first)")
                    device = ir.StringAttr(o.attributes[DEVICE]).value
                    callee = ir.FlatSymbolRefAttr(o.attributes["callee"]).value
                    per_device.setdefault(device, set()).add(callee)
        for device, callees in sorted(per_device.items()):
            self.device_modules[device] = self._device_module(funcs, sorted(callees), device)

    def _device_module(self, funcs, callees: list[str], device: str) -> str:
        """The device's IREE input module, built with IREE's own bindings (they know the
        util and flow dialects the weights need): globals bound to parameters, a wrapper per
        kernel that loads them and calls the implementation, then the implementations. Each
        implementation crosses from agentc's bindings (torch-mlir's build of MLIR) to IREE's
        as text, the one form the two builds share."""
        runtime = self.runtimes.get(device, device)
        chosen = [impl_for(funcs, c, runtime) for c in callees]
        for impl in chosen:  # before anything reaches IREE's context
            CheckNoAgentOps(device)(impl.operation)
        # Local scope: printing a nested op otherwise walks the whole module each time.
        texts = [impl.operation.get_asm(use_local_scope=True) for impl in chosen]
        loads = [self._weights_loaded(funcs[c]) for c in callees]
        self.device_weights[device] = sorted({g for names in loads for g in names})
        # The module is a function of these alone: a warm compile takes it from the store
        # and never loads IREE's compiler bindings (~80 ms).
        kernels = [sorted(_kernel_calls(impl.operation)) for impl in chosen]
        obj = _kernel_object(kernels, runtime, device)
        key = {"callees": callees, "impls": texts, "weights": loads, "kernels": kernels, "object": str(obj), "v": 2}
        return store.cached_bytes("device-modules", key,
                                  lambda: self._build(callees, texts, loads, kernels, obj).encode(), ".mlir").decode()

    def _build(self, callees: list[str], texts: list[str], loads: list[list[str]], kernels: list[list[str]],
               obj) -> str:
        from iree.compiler import ir as iree
        from iree.compiler.dialects import func as func_d
        from iree.compiler.dialects import util

        with iree.Context(), iree.Location.unknown():
            module = iree.Module.create()
            parsed, impls = [], []
            for c, text, names in zip(callees, texts, kernels):
                calls = [gemv.parse(n) for n in names]
                # (declared beside it: a module that calls an undefined function does not parse)
                p = iree.Module.parse("module {\n" + "".join(g.declaration() for g in calls) + text + "\n}")
                fop = p.body.operations[len(calls)]
                # A runtime's variant takes the default's name in its device's module.
                iree.SymbolTable.set_symbol_name(fop, f"{c}_impl")
                parsed.append(p)  # owns fop until it is moved into `module`
                impls.append(fop)
            plans, globals_ = [], {}
            for c, fop, names in zip(callees, impls, loads):
                ftype = iree.FunctionType(iree.TypeAttr(fop.attributes["function_type"]).value)
                for g, t in zip(names, ftype.inputs):
                    globals_[g] = t
                plans.append((c, ftype, names))
            with iree.InsertionPoint(module.body):
                for g, t in globals_.items():
                    value = iree.Attribute.parse(f"#flow.parameter.named<{json.dumps(SCOPE)}::{json.dumps(g)}> : {t}")
                    util.GlobalOp(g, iree.TypeAttr.get(t), sym_visibility="private", initial_value=value)
                for c, ftype, names in plans:
                    acts = list(ftype.inputs[len(names):])
                    wrapper = func_d.FuncOp(c, (acts, list(ftype.results)))
                    entry = wrapper.add_entry_block()
                    with iree.InsertionPoint(entry):
                        loads = [util.GlobalLoadOp(globals_[g], iree.FlatSymbolRefAttr.get(g)).result for g in names]
                        call = func_d.CallOp(list(ftype.results), iree.FlatSymbolRefAttr.get(f"{c}_impl"),
                                             loads + list(entry.arguments))
                        func_d.ReturnOp(list(call.results))
            for fop in impls:
                module.body.append(fop)
            for name in sorted({n for names in kernels for n in names}):  # the CPU kernels' functions, executables
                defs = iree.Module.parse(gemv.definition(gemv.parse(name), obj))
                parsed.append(defs)
                for op in list(defs.body.operations):
                    module.body.append(op)
            module.operation.verify()
            return module.operation.get_asm()

    @staticmethod
    def _weights_loaded(wrapper) -> list[str]:
        """The globals a kernel's wrapper loads, in order: its implementation's first
        arguments, and the parameter keys of the archives (the global's name)."""
        return [ir.FlatSymbolRefAttr(op.operation.attributes["global"]).value
                for block in wrapper.regions[0].blocks for op in block.operations
                if op.operation.name == "ml_program.global_load_const"]


def _kernel_calls(op) -> set[str]:
    """The CPU kernels (agentc.cpu_kernels.gemv) an implementation calls, loops included."""
    found = set()
    for region in op.regions:
        for block in region.blocks:
            for inner in block.operations:
                o = inner.operation
                if o.name == "func.call":
                    callee = ir.FlatSymbolRefAttr(o.attributes["callee"]).value
                    if gemv.parse(callee) is not None:
                        found.add(callee)
                elif not o.name.startswith("linalg."):  # (a linalg body calls nothing)
                    found |= _kernel_calls(o)
    return found


def _kernel_object(kernels: list[list[str]], runtime: str | None, device: str):
    """The object file the CPU kernels' definitions link (its path holds its hash, so the
    module changes with it); None where no implementation calls one."""
    names = sorted({n for names in kernels for n in names})
    if not names:
        return None
    if runtime != "cpu":
        raise ValueError(f"device '{device}' ({runtime}) cannot run {names[0]}: the quantized CPU kernels "
                         f"run on cpu devices only")
    return objects.object_file(objects.variant())
