"""outline-device-modules: after placement, one IREE input module per device.

Each call in the operator IR gets an `agent.device` attribute; each device module holds the
kernels placed there, with their weights turned into IREE parameters
(`util.global` = `#flow.parameter.named<"agentc"::"<group>/<param>">`): a device loads the
weights of the kernels placed on it, once, from the build's archives. One module per device, because IREE 3.13 cannot compile
one module spanning devices with separate memories.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from torch_mlir import ir

from agentc.emit import op_name
from agentc.kernels import impl_for, rename_symbol, variant_symbol
from agentc.models.irpa import SCOPE, param_key
from agentc.passes import run_pass
from agentc.passes.check_no_agent_ops import CheckNoAgentOps


@dataclass
class OutlineDeviceModules:
    """Options: placement maps operator names (from locations) to devices."""

    placement: dict[str, str]
    weights: dict[str, dict] = field(default_factory=dict)  # group -> {param: array}
    # device -> runtime (cpu, vulkan, cuda); a device named after its runtime needs none.
    # A kernel with a variant for the runtime (@<kernel>_impl__<runtime>) uses it there.
    runtimes: dict[str, str | None] = field(default_factory=dict)
    NAME = "outline-device-modules"

    def __post_init__(self):
        self.device_modules: dict[str, str] = {}

    def __call__(self, module_op: ir.Operation, pass_=None) -> None:
        body = module_op.regions[0].blocks[0]
        funcs = {ir.StringAttr(o.attributes["sym_name"]).value: o for o in body.operations
                 if o.operation.name == "func.func"}
        per_device: dict[str, set[str]] = {}
        for f in funcs.values():
            if "agent.kernel" in f.attributes:
                continue
            for block in f.regions[0].blocks:
                for op in block.operations:
                    o = op.operation
                    if o.name != "func.call":
                        continue
                    name = op_name(o)
                    device = self.placement.get(name)
                    if device is None:
                        raise KeyError(f"operator '{name}' has no placement")
                    o.attributes["agent.device"] = ir.StringAttr.get(device)
                    callee = ir.FlatSymbolRefAttr(o.attributes["callee"]).value
                    per_device.setdefault(device, set()).add(callee)
        for device, callees in sorted(per_device.items()):
            self.device_modules[device] = self._device_module(funcs, sorted(callees), device)

    def _device_module(self, funcs, callees: list[str], device: str) -> str:
        runtime = self.runtimes.get(device, device)
        impls = []
        for c in callees:
            impl = impl_for(funcs, c, runtime)
            # Local scope: printing a nested op otherwise walks the whole module each time.
            text = impl.operation.get_asm(use_local_scope=True)
            if impl is not funcs[c + "_impl"]:  # the runtime's variant, under the default's name
                text = rename_symbol(text, variant_symbol(c, runtime), f"{c}_impl")
            impls.append(text)
        # Verify the device part on its own before any IREE-specific text is added.
        impl_module = ir.Module.parse("module {\n" + "\n".join(impls) + "\n}")
        run_pass(impl_module, CheckNoAgentOps(device))
        decls, wrappers = {}, []
        for c in callees:
            wrapper = funcs[c]
            group = ir.StringAttr(wrapper.attributes["agent.weights"]).value
            ftype = ir.FunctionType(ir.TypeAttr(funcs[c + "_impl"].attributes["function_type"]).value)
            params = list(self.weights.get(group, {})) if self._uses_weights(wrapper) else []
            n_w = len(params)
            loads, operands = [], []
            for i, (pname, t) in enumerate(zip(params, ftype.inputs[:n_w])):
                g = param_key(group, pname)
                decls[g] = (f'util.global private @"{g}" = #flow.parameter.named<'
                            f'{json.dumps(SCOPE)}::{json.dumps(g)}> : {t}')
                loads.append(f'  %w{i} = util.global.load @"{g}" : {t}')
                operands.append(f"%w{i}")
            acts = ftype.inputs[n_w:]
            args = ", ".join(f"%a{i}: {t}" for i, t in enumerate(acts))
            operands += [f"%a{i}" for i in range(len(acts))]
            res = ", ".join(str(t) for t in ftype.results)
            ins = ", ".join(str(t) for t in ftype.inputs)
            n = len(ftype.results)
            rets = ", ".join(f"%r#{i}" for i in range(n))
            wrappers.append(
                f"func.func @{c}({args}) -> ({res}) {{\n" + "\n".join(loads) +
                f"\n  %r:{n} = func.call @{c}_impl({', '.join(operands)}) : ({ins}) -> ({res})\n"
                f"  return {rets} : {res}\n}}")
        body = impl_module.operation.get_asm()
        start = body.index("module {")
        aliases, inner = body[:start], body[start + len("module {"): body.rindex("}")]
        return aliases + "module {\n" + "\n".join(decls.values()) + "\n" + "\n".join(wrappers) + inner + "}\n"

    @staticmethod
    def _uses_weights(wrapper) -> bool:
        for block in wrapper.regions[0].blocks:
            for op in block.operations:
                if op.operation.name == "ml_program.global_load_const":
                    return True
        return False
