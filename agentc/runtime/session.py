"""Run a build: each device's module on its HAL device, host ops on a thread pool.

Operators start as soon as their inputs are ready (dataflow), on the device the plan
placed them on: one worker per device serialises that device's calls, so independent
operators on different devices overlap, and operators of concurrent requests interleave.
Tensors stay on the device that produced them until another device or the host needs them.
Weights are IREE parameters, loaded once per device and shared by all its operators.
"""

from __future__ import annotations

import re
import sys
import threading
import time
from collections import deque
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from agentc.models import registry
from agentc.models.irpa import SCOPE, load_index
from agentc.runtime.devices import KINDS
from agentc.runtime.host_ops import (
    INLINE_HOST_OPS,
    SKIPPED,
    BuildError,
    InputError,
    RunError,
    forward,
    run_host_op,
    skipped_inputs,
)
from agentc.runtime.tool_pool import ToolPool
from agentc.runtime.trace import DEFAULT_EVENTS, Trace
from agentc.runtime.values import pop_values
from agentc.runtime.verify import read_json, verify_build
from agentc.tool_record import TOOLS_FILE, load_tools


class Device:
    """One HAL device and its module. Everything that touches the device (creating it,
    calls, readbacks, freeing its buffers, teardown) runs on its one worker thread: CUDA
    binds a context to the thread that created it, and IREE's CUDA allocator fails with
    CUDA_ERROR_INVALID_CONTEXT on any other thread."""

    def __init__(self, name: str, runtime: str, vmfb: bytes, weights, driver: str | None = None):
        self.name, self.kind, self._driver = name, KINDS[runtime], driver
        self.worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"agentc-{name}")
        self._thread = None
        self.on_thread(self._open, vmfb, weights)

    def owns_thread(self) -> bool:
        """Is the caller this device's worker thread?"""
        return threading.current_thread() is self._thread

    def on_thread(self, fn, *args):
        """Run fn(*args) on this device's worker thread and return its result."""
        if self.owns_thread():
            return fn(*args)
        return self.worker.submit(fn, *args).result()

    def _open(self, vmfb: bytes, weights) -> None:
        """`weights`: the build's ParameterIndex (memory-mapped archives). Module
        initialisation loads the parameters this device's globals name, and no others."""
        import iree.runtime as rt

        self._thread = threading.current_thread()
        self.device = self.kind.create(self._driver)
        self.instance = rt.VmInstance()
        self.providers = [weights.create_provider(scope=SCOPE)] if weights is not None else []
        modules = [rt.create_hal_module(self.instance, self.device)]
        if self.providers:
            modules.append(rt.create_io_parameters_module(self.instance, *self.providers))
        self.main = rt.VmModule.copy_buffer(self.instance, vmfb)
        self.context = rt.VmContext(self.instance, modules=modules + [self.main])
        self.functions = {}
        self._staging = {}  # readback buffers by size, reused (see DeviceKind.to_host)

    def call(self, fn: str, args: list):
        """Run on the worker (the request submits it there)."""
        import iree.runtime as rt

        if fn not in self.functions:
            found = self.main.lookup_function(fn)
            if found is None:
                raise RunError(f"the {self.name} module has no function '{fn}': the module is not "
                               f"this build's; recompile the agent")
            self.functions[fn] = rt.FunctionInvoker(self.context, self.device, found)
        out = self.functions[fn](*args)
        return list(out) if isinstance(out, (tuple, list)) else [out]

    def to_host(self, array) -> np.ndarray:
        return self.on_thread(self.kind.to_host, self.device, array, self._staging)

    def release(self, arrays: list) -> None:
        """Drop the last references to device buffers on the worker thread, without
        waiting for it: the worker frees them between calls."""
        if self.owns_thread():
            arrays.clear()
        else:
            self.worker.submit(arrays.clear)

    def close(self):
        def teardown():
            # IREE objects must go in dependency order, or teardown can crash.
            self.functions.clear()
            self._staging.clear()
            for attr in ("context", "main", "providers", "instance", "device"):
                setattr(self, attr, None)

        self.on_thread(teardown)
        self.worker.shutdown(wait=True)


PLAN_FIELDS = ("agent", "inputs", "input_ids", "outputs", "devices", "ops", "indexes")


class Session:
    """A loaded build. `run(inputs)` is thread-safe; several requests may be in flight."""

    def __init__(self, build_dir, host_threads: int = 8, trace: Trace | None = None,
                 drivers: dict[str, str] | None = None, verify: bool = True, tool_threads: int = 8,
                 trace_events: int | None = DEFAULT_EVENTS):
        """`drivers` overrides a device's HAL driver by device name (e.g. {"cpu": "local-sync"}).
        `verify`: check every file against the build's manifest first (agentc/runtime/verify.py).
        `tool_threads`: the most graph.py tool calls that run at once (agentc/runtime/tool_pool.py).
        `trace_events`: the trace ring's size (None: keep every event)."""
        self.dir = Path(build_dir)
        self.manifest = verify_build(self.dir, verify)
        self.plan = read_json(self.dir / "plan.json", self.dir, "the plan")
        try:
            missing = [k for k in PLAN_FIELDS if k not in self.plan]
            if missing:
                raise KeyError(missing[0])
            self.ops = self.plan["ops"]
            self._index_dependencies()
            needed = list(self.plan.get("weights", [])) + [f"{d['module']}.vmfb" for d in self.plan["devices"].values()]
        except (KeyError, TypeError, ValueError) as e:
            raise BuildError(f"{self.dir / 'plan.json'}: damaged ({type(e).__name__}: {e}); "
                           f"recompile the agent") from None
        unlisted = [rel for rel in needed if rel not in self.manifest["files"]]
        if verify and unlisted:
            raise BuildError(f"{self.dir / unlisted[0]}: not listed in manifest.json (a build of an older agentc, "
                             f"or damaged); recompile the agent")
        self.weights = self._load_weights()
        self.devices: dict[str, Device] = {}
        for d, info in self.plan["devices"].items():
            try:
                vmfb = (self.dir / f"{info['module']}.vmfb").read_bytes()
            except OSError as e:
                self.close()
                raise BuildError(f"{e.filename}: cannot read the {d} module ({e.strerror}); "
                               f"recompile the agent") from None
            try:
                self.devices[d] = Device(d, info["runtime"], vmfb, self.weights, (drivers or {}).get(d))
            except (RuntimeError, ValueError) as e:  # e.g. a weight the module names is in no archive
                for dev in self.devices.values():
                    dev.close()
                first = str(e).splitlines()[0] if str(e) else type(e).__name__
                missing = re.search(r"no parameter found in index with key '[^']*'", first)
                raise BuildError(f"{self.dir}: device '{d}' could not load its module: "
                               f"{missing.group(0) if missing else first}; recompile the agent") from None
        self._check_functions()
        # The build's own tokenizers, on copies of the models: the registry is shared.
        self.models = {name: registry.model(name).with_tokenizer_file(self.dir / rel)
                       for name, rel in self.plan.get("tokenizers", {}).items()}
        try:
            self.tools = self._load_tools()
        except BuildError:
            self.close()
            raise
        self.host = ThreadPoolExecutor(max_workers=host_threads, thread_name_prefix="agentc-host")
        self.tool_pool = ToolPool(tool_threads)
        self.trace = trace or Trace(trace_events)
        self._requests = 0
        self._lock = threading.Lock()
        self._closed = False
        self._warned: set[str] = set()
        self.warnings = 0  # prompt truncations and the like, each also in the trace

    def _index_dependencies(self) -> None:
        """Per operator, the values it waits for (inputs and guards); per value, the
        operators that consume it. Requests count these down instead of rescanning the
        plan, and free a value once its last consumer has run."""
        self.deps = [sorted(set(op["inputs"]) | {g for g, _ in op["guards"]}) for op in self.ops]
        self.consumers: dict[str, list[int]] = {}
        for i, deps in enumerate(self.deps):
            for v in deps:
                self.consumers.setdefault(v, []).append(i)
        self.passages = self.plan["indexes"]

    def _check_functions(self) -> None:
        """Every kernel the plan calls is in its device's module (a module copied in from
        another build would otherwise fail mid-request)."""
        for op in self.ops:
            if op["kind"] != "call":
                continue
            dev = self.devices.get(op["device"])
            if dev is None or dev.on_thread(dev.main.lookup_function, op["callee"]) is None:
                module = self.plan["devices"].get(op["device"], {}).get("module", op["device"])
                self.close()
                raise BuildError(f"{self.dir / (module + '.vmfb')}: has no function '{op['callee']}' for node "
                                 f"'{op['name']}': the module is not this build's; recompile the agent")

    def _load_weights(self):
        for rel in self.plan.get("weights", []):
            if not (self.dir / rel).is_file():
                raise BuildError(f"{self.dir}: weights archive '{rel}' is missing; recompile the agent")
        try:
            return load_index(*(self.dir / rel for rel in self.plan.get("weights", [])))
        except ValueError as e:
            raise BuildError(f"{e}; recompile the agent") from None

    def _load_tools(self) -> dict:
        """The tools recorded at compile time (agentc/tool_record.py): the build's own
        files only, graph.py is not run again."""
        names = {op["attrs"]["callee"] for op in self.ops if op["kind"] == "tool"}
        if not names:
            return {}
        path = self.dir / TOOLS_FILE
        try:
            tools = load_tools(path)
        except FileNotFoundError:
            raise BuildError(f"{path}: missing; the build is incomplete: recompile the agent") from None
        except Exception as e:  # noqa: BLE001 - unpickling runs the tools' module code
            raise BuildError(f"{path}: cannot load the agent's tools ({type(e).__name__}: {e}); "
                             f"recompile the agent") from None
        missing = sorted(names - set(tools))
        if missing:
            raise BuildError(f"{path}: has no tool '{missing[0]}'; recompile the agent")
        return tools

    # -- requests -------------------------------------------------------------------
    def run(self, inputs: dict[str, str], fetch: list[str] | None = None) -> dict:
        """Run one request. Returns {"outputs": [...], "values": {op name: host value}}
        for the ops named in `fetch`. Raises InputError for inputs that are unknown,
        missing or not text, and RunError naming the failing node."""
        check_inputs(inputs, self.plan["inputs"])
        with self._lock:
            if self._closed:
                raise RunError("the session is closed; load the build again (agentc.load)")
            self._requests += 1
            rid = self._requests
        return _Request(self, rid, inputs, fetch or []).execute()

    def warn(self, op: dict, request: int, message: str) -> None:
        """A request went on, but not as written (a prompt cut to the model's budget): an
        instant event in the trace every time, one stderr line per node per session."""
        self.trace.add(op["device"] if op["kind"] == "call" else "host", op["name"], request,
                       time.perf_counter(), time.perf_counter(), note=message)
        with self._lock:
            self.warnings += 1
            first = op["name"] not in self._warned
            self._warned.add(op["name"])
        if first:
            print(f"agentc: warning: node '{op['name']}' ({op['loc']}): {message} (later ones of this "
                  f"node only in the trace)", file=sys.stderr, flush=True)

    def stats(self) -> dict:
        """Counters for a long-lived session: requests, warnings, tool threads and the
        abandoned tool calls still holding one, trace events kept and dropped."""
        return {"requests": self._requests, "warnings": self.warnings,
                "tool_threads": self.tool_pool.thread_count(), "tools_stuck": self.tool_pool.stuck(),
                "tools_abandoned": self.tool_pool.abandoned_total,
                "trace_events": len(self.trace.events), "trace_dropped": self.trace.dropped}

    def close(self) -> list[str]:
        """Stop: requests still running fail at their next operator, queued host work is
        dropped. Returns within the longest tool timeout (plus the operator running on each
        device); returns the tools abandoned past their timeouts that are still running, and
        says so on stderr."""
        if getattr(self, "_closed", True) and not self.devices:
            return []
        self._closed = True
        if hasattr(self, "host"):
            self.host.shutdown(wait=True, cancel_futures=True)
        stuck = self.tool_pool.close() if hasattr(self, "tool_pool") else []
        for d in self.devices.values():
            d.close()
        self.devices.clear()
        if stuck:
            print(f"agentc: warning: closed with {len(stuck)} tool call(s) still running past their "
                  f"timeouts, abandoned: {', '.join(stuck)}", file=sys.stderr, flush=True)
        return stuck

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def check_inputs(inputs, names: list[str]) -> None:
    """A request's inputs, checked before anything runs: a mapping of exactly the agent's
    input names to text."""
    takes = f"the agent takes {', '.join(names) or 'no inputs'}"
    if not isinstance(inputs, Mapping):
        raise InputError(f"inputs must be a mapping of input name to text, got {type(inputs).__name__} ({takes})")
    unknown = [k for k in inputs if k not in names]
    if unknown:
        raise InputError(f"unknown input '{unknown[0]}' ({takes})")
    missing = [n for n in names if n not in inputs]
    if missing:
        raise InputError(f"missing input '{missing[0]}' ({takes})")
    for n in names:
        if not isinstance(inputs[n], str):
            raise InputError(f"input '{n}' must be text (str), got {type(inputs[n]).__name__}")


class _Request:
    def __init__(self, s: Session, rid: int, inputs: dict, fetch: list[str]):
        self.s, self.rid, self.fetch = s, rid, fetch
        self.values: dict[str, tuple[str, object]] = {}  # value id -> (where, value)
        # Host copies of device values, kept beside them: a token read back for its
        # end-of-turn check still feeds the next decode step from the device, and device
        # buffers are only ever freed by `_release`, on their device's thread.
        self.copies: dict[str, np.ndarray] = {}
        for name, vid in zip(s.plan["inputs"], s.plan["input_ids"]):
            self.values[vid] = ("host", inputs[name])
        self.cv = threading.Condition()
        self.waiting = [sum(v not in self.values for v in deps) for deps in s.deps]
        self.uses = {v: len(c) for v, c in s.consumers.items()}
        self.keep = set(s.plan["outputs"]) | {op["outputs"][0] for op in s.ops if op["name"] in fetch}
        self.unfinished = len(s.ops)
        self.error: BaseException | None = None
        self.done = False

    def execute(self) -> dict:
        try:
            self._launch([i for i, n in enumerate(self.waiting) if n == 0])
            with self.cv:
                while self.unfinished and self.error is None:
                    self.cv.wait(timeout=0.5)
            if self.error is not None:
                raise self.error
            outs = [self._host(v) for v in self.s.plan["outputs"]]
            fetched = {op["name"]: self._host(op["outputs"][0]) for op in self.s.ops if op["name"] in self.fetch}
            return {"outputs": outs, "values": fetched}
        finally:
            with self.cv:
                self.done = True  # operators still running drop their results (_finish)
            self._release(list(self.values))

    def _release(self, vids: list[str]) -> None:
        """Drop values; device-resident ones are freed on their devices' threads
        (agentc/runtime/values.py)."""
        with self.cv:
            by_device = pop_values(vids, self.values, self.copies, self.s.devices)
        for where, vals in by_device.items():
            self.s.devices[where].release(vals)

    def _launch(self, ready: list[int]) -> None:
        """Start operators whose inputs are ready. A loop, not recursion: skipping finishes
        an operator at once and readies the next, and after an end-of-turn that chain runs
        through every remaining layer of every remaining decode step."""
        queue = deque(ready)
        while queue and self.error is None:
            i = queue.popleft()
            op = self.s.ops[i]
            if op["kind"] in INLINE_HOST_OPS and self._readable_here(op):
                queue.extend(self._dispatch(i, inline=True))
            elif self._foreign(op):
                self.s.host.submit(self._dispatch_and_launch, i)
            else:
                queue.extend(self._dispatch(i))

    def _dispatch_and_launch(self, i: int) -> None:
        self._launch(self._dispatch(i))

    # Device workers never wait on another device (two could deadlock): an operator whose
    # inputs or guards sit on a device other than its own is dispatched from a host thread,
    # which reads them back (each readback on its own device's thread) before queueing it.
    def _readable_here(self, op) -> bool:
        """Can this thread read op's inputs without waiting on another thread? Host values,
        and values of the device whose worker this is."""
        return all(self.values[v][0] == "host" or self.s.devices[self.values[v][0]].owns_thread()
                   for v in op["inputs"]) and not op["guards"]

    def _foreign(self, op) -> bool:
        own = op["device"] if op["kind"] == "call" else "host"
        deps = [(v, own) for v in op["inputs"]] + [(g, "host") for g, _ in op["guards"]]
        return any(self.values[v][0] not in ("host", want) for v, want in deps)

    def _dispatch(self, i: int, inline: bool = False) -> list[int]:
        """Queue operator i, or with `inline` run it (a host op) on this thread; returns the
        operators it readied if it finished at once."""
        op = self.s.ops[i]
        try:
            if self.s._closed:
                raise RunError("the session was closed while the request ran")
            if any(self._host(g) is SKIPPED or bool(self._host(g)) != want for g, want in op["guards"]) or \
                    skipped_inputs(op["kind"], [self.values[v][1] for v in op["inputs"]]):
                return self._finish(i, [("host", SKIPPED)] * len(op["outputs"]))
            if inline:  # only host ops are run inline
                return self._host_op(i)
            if op["kind"] != "call":
                self.s.host.submit(self._run_host_op, i)
                return []
            args = [self._on(v, op["device"]) for v in op["inputs"]]
        except BaseException as e:  # noqa: BLE001 - reported as the request's error, naming the node
            self._fail(op, e)
            return []
        self.s.devices[op["device"]].worker.submit(self._run_call, i, args)
        return []

    def _run_call(self, i: int, args):
        op = self.s.ops[i]
        t0 = time.perf_counter()
        try:
            if self.s._closed:
                raise RunError("the session was closed while the request ran")
            outs = self.s.devices[op["device"]].call(op["callee"], args)
        except BaseException as e:  # noqa: BLE001 - reported as the request's error, naming the node
            self._fail(op, e)
            return
        del args  # the operands' last references, if the request already let go of them
        self.s.trace.add(op["device"], op["name"], self.rid, t0, time.perf_counter())
        self._launch(self._finish(i, [(op["device"], r) for r in outs]))

    def _run_host_op(self, i: int):
        self._launch(self._host_op(i))

    def _host_op(self, i: int) -> list[int]:
        op = self.s.ops[i]
        t0 = time.perf_counter()
        try:
            args = [self._host(v) for v in op["inputs"]]
            outs = run_host_op(op["kind"], op["attrs"], args, len(op["outputs"]), self.s.passages, self.s.tools,
                               self.s.tool_pool, lambda msg: self.s.warn(op, self.rid, msg), self.s.models)
        except BaseException as e:  # noqa: BLE001 - reported as the request's error, naming the node
            self._fail(op, e)
            return []
        self.s.trace.add("host", op["name"], self.rid, t0, time.perf_counter())
        return self._finish(i, forward(outs, args, [self.values[v] for v in op["inputs"]]))

    def _fail(self, op, e: BaseException) -> None:
        with self.cv:
            if self.error is None:
                msg = e.args[0] if isinstance(e, RunError) and e.args else f"{type(e).__name__}: {e}"
                self.error = RunError(f"node '{op['name']}' ({op['loc']}): {msg}")
            self.cv.notify_all()

    def _finish(self, i: int, placed: list) -> list[int]:
        """Record operator i's results, each (where, value); returns the operators that are
        now ready."""
        op, ready, spent = self.s.ops[i], [], []
        with self.cv:
            if self.done:  # the request failed or was interrupted while this operator ran
                late: dict[str, list] = {}
                for where, val in placed:
                    if where in self.s.devices:
                        late.setdefault(where, []).append(val)
                for where, vals in late.items():
                    self.s.devices[where].release(vals)
                return []
            for vid, val in zip(op["outputs"], placed):
                self.values[vid] = val
                for c in self.s.consumers.get(vid, ()):
                    self.waiting[c] -= 1
                    if self.waiting[c] == 0:
                        ready.append(c)
            for v in self.s.deps[i]:
                self.uses[v] -= 1
                if self.uses[v] == 0 and v not in self.keep:
                    spent.append(v)
            self.unfinished -= 1
            self.cv.notify_all()
        self._release(spent)
        return ready

    # -- values -----------------------------------------------------------------------
    def _host(self, vid):
        where, val = self.values[vid]
        if where == "host" or val is SKIPPED or isinstance(val, (str, bool, np.ndarray)):
            return val
        copy = self.copies.get(vid)
        if copy is None:
            copy = self.s.devices[where].to_host(val)
            with self.cv:
                self.copies[vid] = copy
        return copy

    def _on(self, vid, device: str):
        where, val = self.values[vid]
        if where == device:
            return val
        return self._host(vid)
