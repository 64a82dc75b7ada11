"""Run an agent's operators directly on IREE HAL devices, in program order, with a device
chosen per operator by the caller: a small reference executor for model tests and
benchmarks, independent of the placer and of the runtime (agentc.runtime.session).

Lowering is exactly `agentc compile`'s: trace, decompose-agent-ops, plan,
outline-device-modules, IREE compile (cached). Execution differs from the runtime in being
sequential (no overlap between devices) and in freeing each device value right after its
last consumer: holding every layer's KV cache of every decode step until the end of a
request makes IREE's local allocator grow by hundreds of MB per request (measured: +535 MB
per SmolLM2 request with 32 tokens) and costs time in fresh page faults.

    run = DirectRun("graph.py", lambda op_name: "cpu")
    outputs, fetched = run({"query": "..."}, fetch=["embed_query/pool"])
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np


class DirectRun:
    def __init__(self, graph_path, assign: Callable[[str], str], drivers: dict[str, str] | None = None,
                 raw_tokens: bool = False):
        """`assign(op_name) -> device kind` for every compute operator; `drivers`
        overrides a kind's HAL driver (e.g. {"cpu": "local-sync"}); with `raw_tokens`,
        detokenize returns the sampled token arrays instead of text."""
        from agentc.dialects import context
        from agentc.emit import emit_agent_ir
        from agentc.frontend.trace import trace_file
        from agentc.iree_compile import compile_module
        from agentc.passes import run_pass
        from agentc.passes.decompose_agent_ops import DecomposeAgentOps
        from agentc.passes.outline_device_modules import OutlineDeviceModules
        from agentc.plan import build_plan
        from agentc.runtime.devices import KINDS

        self.raw_tokens = raw_tokens
        self.graph = trace_file(graph_path)
        ctx = context()
        module = emit_agent_ir(self.graph, ctx)
        with ctx:
            decompose = DecomposeAgentOps(indexes=self.graph.indexes)
            run_pass(module, decompose)
            self.ops, self.inputs, self.outputs = build_plan(module, self.graph.name)
            where = {op.name: assign(op.name) for op in self.ops if op.kind == "call"}
            outline = OutlineDeviceModules(where, decompose.weights)
            run_pass(module, outline)
        for op in self.ops:
            op.device = where.get(op.name, "host")
        self.weights = decompose.weights  # {group: {param: array}}
        self.devices = {}
        for dev, text in outline.device_modules.items():
            kind = KINDS[dev]
            vmfb, _ = compile_module(text, kind.target, kind.compile_flags, dev)
            self.devices[dev] = _Device(kind, (drivers or {}).get(dev, kind.driver), vmfb, decompose.weights)
        self._last_use = {v: i for i, op in enumerate(self.ops) for v in op.inputs}

    def __call__(self, inputs: dict, fetch=()) -> tuple[list, dict]:
        """Returns (outputs as host values, {op name: its first result} for `fetch`)."""
        from agentc.models import registry

        vals = {vid: ("host", inputs[v.name]) for vid, v in zip(self.inputs, self.graph.inputs)}

        def host(vid):
            where, v = vals[vid]
            if where != "host":
                v = self.devices[where].to_host(v)
                vals[vid] = ("host", v)
            return v

        keep, fetched = set(self.outputs), {}
        self.timeline = []  # (op name, start, end) of this request, perf_counter seconds
        for i, op in enumerate(self.ops):
            t0 = time.perf_counter()
            if op.kind == "call":
                args = [vals[v][1] if vals[v][0] == op.device else host(v) for v in op.inputs]
                outs = [(op.device, r) for r in self.devices[op.device].call(op.callee, args)]
            else:
                outs = [("host", r) for r in self._host_op(op, [host(v) for v in op.inputs], registry)]
            vals.update(zip(op.outputs, outs))
            self.timeline.append((op.name, t0, time.perf_counter()))
            if op.name in fetch:
                fetched[op.name] = host(op.outputs[0])
            for v in op.inputs:
                if self._last_use[v] == i and v not in keep:
                    vals.pop(v, None)
        return [host(v) for v in self.outputs], fetched

    def _host_op(self, op, a: list, registry) -> list:
        attrs, m = op.attrs, op.attrs.get("model")
        if op.kind == "tokenize" and len(op.outputs) == 2:
            return list(registry.decoder(m).tokenize_prompt(a[0]))
        if op.kind == "tokenize":
            return [registry.encoder(m).tokenize(a[0])]
        if op.kind == "detokenize":
            return [a if self.raw_tokens else registry.decoder(m).detokenize(a)]
        if op.kind == "format":
            return [attrs["template"].format(*a)]
        if op.kind == "join":
            return [attrs["separator"].join(a)]
        if op.kind == "passages":
            return [self.graph.indexes[attrs["index"]].lookup(a[0])]
        raise NotImplementedError(f"direct run: host op '{op.kind}'")

    def close(self):
        for d in self.devices.values():
            d.close()
        self.devices.clear()


class _Device:
    def __init__(self, kind, driver: str, vmfb: bytes, weights: dict):
        import iree.runtime as rt

        self.kind = kind
        self.device = rt.get_driver(driver).create_default_device()
        self.instance = rt.VmInstance()
        self.keep, providers = [], []
        for group, params in weights.items():
            index = rt.ParameterIndex()
            for pname, arr in params.items():
                index.add_buffer(pname, self._aligned(arr))
            providers.append(index.create_provider(scope=group))
            self.keep.append(index)
        modules = [rt.create_hal_module(self.instance, self.device),
                   rt.create_io_parameters_module(self.instance, *providers)]
        self.main = rt.VmModule.copy_buffer(self.instance, vmfb)
        self.context = rt.VmContext(self.instance, modules=modules + [self.main])
        self.fns = {}

    def _aligned(self, arr):
        raw = np.empty(arr.nbytes + 4096, np.uint8)  # page-aligned: Vulkan imports host pointers
        off = (-raw.ctypes.data) % 4096
        view = raw[off:off + arr.nbytes]
        view[:] = np.ascontiguousarray(arr).view(np.uint8).ravel()
        self.keep.append(raw)
        return view

    def call(self, fn: str, args: list) -> list:
        import iree.runtime as rt

        if fn not in self.fns:
            self.fns[fn] = rt.FunctionInvoker(self.context, self.device, self.main.lookup_function(fn))
        out = self.fns[fn](*args)
        return list(out) if isinstance(out, (tuple, list)) else [out]

    def to_host(self, a):
        return a if isinstance(a, np.ndarray) else self.kind.to_host(self.device, a)

    def close(self):
        self.fns.clear()  # IREE objects go in dependency order
        for attr in ("context", "main", "keep", "instance", "device"):
            setattr(self, attr, None)
