"""Run an agent's operators directly on IREE HAL devices, in program order, with a device
chosen per operator by the caller: a small reference executor for model tests and
benchmarks, independent of the placer and of the runtime (agentc.runtime.session).

Lowering is exactly `agentc compile`'s: trace, decompose-agent-ops, plan,
outline-device-modules, IREE compile (cached). Execution is sequential (no overlap between
devices) and skips the placer, so a test can force any operator onto any device; devices
and host operators are the runtime's own (`runtime.session.Device`, `runtime.host_ops`).

    run = DirectRun("graph.py", lambda op_name: "cpu")
    outputs, fetched = run({"query": "..."}, fetch=["embed_query/pool"])
"""

from __future__ import annotations

import time
from collections.abc import Callable

from agentc.runtime.host_ops import SKIPPED, forward, run_host_op, skipped_inputs
from agentc.runtime.tool_pool import ToolPool
from agentc.runtime.values import pop_values


class DirectRun:
    def __init__(self, graph_path, assign: Callable[[str], str], drivers: dict[str, str] | None = None,
                 raw_tokens: bool = False):
        """`assign(op_name) -> device kind` for every compute operator; `drivers`
        overrides a kind's HAL driver (e.g. {"cpu": "local-sync"}); with `raw_tokens`,
        detokenize returns the sampled token arrays instead of text."""
        from agentc.build_weights import archives
        from agentc.iree_compile import compile_module
        from agentc.lowering import lower
        from agentc.models.irpa import load_index
        from agentc.passes import run_pass
        from agentc.passes.assign_devices import AssignDevices
        from agentc.passes.outline_device_modules import OutlineDeviceModules
        from agentc.runtime.devices import KINDS
        from agentc.runtime.session import Device

        self.raw_tokens = raw_tokens
        low = lower(graph_path)  # per-layer LLM operators, so any layer can be forced anywhere
        self.graph, self.ops, self.inputs, self.outputs = low.graph, low.ops, low.inputs, low.outputs
        where = {op.name: (assign(op.name) if op.kind == "call" else "host", 0.0, 0.0) for op in self.ops}
        with low.ctx:
            run_pass(low.module, AssignDevices(where))
            outline = OutlineDeviceModules()
            run_pass(low.module, outline)
        for op in self.ops:
            op.device = where[op.name][0]
        self.weights = low.weights  # {group: {param: array}}
        # The archives a build copies, read where the store keeps them (read-only, verified).
        weights_index = load_index(*(obj for obj, _, _ in archives(self.weights).values()))
        self.devices = {}
        self.device_modules = outline.device_modules  # device -> IREE input module text
        for dev, text in outline.device_modules.items():
            kind = KINDS[dev]
            vmfb, _ = compile_module(text, kind.target, kind.compile_flags, dev)
            self.devices[dev] = Device(dev, dev, vmfb, weights_index, (drivers or {}).get(dev))
        self.passages = {name: index.passages for name, index in self.graph.indexes.items()}
        self.tool_pool = ToolPool()
        self._last_use = {v: i for i, op in enumerate(self.ops) for v in list(op.inputs) + [g for g, _ in op.guards]}

    def __call__(self, inputs: dict, fetch=()) -> tuple[list, dict]:
        """Returns (outputs as host values, {op name: its first result} for `fetch`)."""
        vals = {vid: ("host", inputs[v.name]) for vid, v in zip(self.inputs, self.graph.inputs)}
        copies = {}  # host copies of device values, kept beside them (as the runtime does)

        def host(vid):
            where, v = vals[vid]
            if where == "host" or v is SKIPPED:
                return v
            if vid not in copies:
                copies[vid] = self.devices[where].to_host(v)
            return copies[vid]

        keep, fetched = set(self.outputs), {}
        self.timeline = []  # (op name, start, end) of this request, perf_counter seconds
        for i, op in enumerate(self.ops):
            t0 = time.perf_counter()
            if any(host(g) is SKIPPED or bool(host(g)) != want for g, want in op.guards) or \
                    skipped_inputs(op.kind, [vals[v][1] for v in op.inputs]):
                outs = [("host", SKIPPED)] * len(op.outputs)  # untaken branch, or after end-of-turn
            elif op.kind == "call":
                args = [vals[v][1] if vals[v][0] == op.device else host(v) for v in op.inputs]
                dev = self.devices[op.device]
                outs = [(op.device, r) for r in dev.on_thread(dev.call, op.callee, args)]
            else:
                args = [host(v) for v in op.inputs]
                outs = forward(self._host_op(op, args), args, [vals[v] for v in op.inputs])
            vals.update(zip(op.outputs, outs))
            self.timeline.append((op.name, t0, time.perf_counter()))
            if op.name in fetch:
                fetched[op.name] = host(op.outputs[0])
            last = [v for v in dict.fromkeys([*op.inputs, *(g for g, _ in op.guards)])
                    if self._last_use[v] == i and v not in keep]
            for where, dropped in pop_values(last, vals, copies, self.devices).items():
                self.devices[where].release(dropped)  # freed on its device's thread, in one task
        return [host(v) for v in self.outputs], fetched

    def _host_op(self, op, args: list) -> list:
        if op.kind == "detokenize" and self.raw_tokens:
            return [[a for a in args if a is not SKIPPED]]  # generation stopped at the first skipped
        return run_host_op(op.kind, op.attrs, args, len(op.outputs), self.passages, self.graph.tools,
                           self.tool_pool)

    def close(self):
        for d in self.devices.values():
            d.close()
        self.devices.clear()
