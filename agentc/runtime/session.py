"""Run a build: each device's module on its HAL device, host ops on a thread pool.

Operators start as soon as their inputs are ready (dataflow), on the device the plan
placed them on: one worker per device serialises that device's calls, so independent
operators on different devices overlap, and operators of concurrent requests interleave.
Tensors stay on the device that produced them until another device or the host needs them.
Weights are IREE parameters, loaded once per device and shared by all its operators.
"""

from __future__ import annotations

import functools
import re
import sys
import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from agentc.build.tools import TOOLS_FILE, load_tools
from agentc.models import registry
from agentc.models.irpa import load_index
from agentc.runtime.ann import AnnIndexes
from agentc.runtime.device import Device
from agentc.runtime.host_ops import BuildError, InputError, RunError
from agentc.runtime.request import Request
from agentc.runtime.tool_pool import ToolPool
from agentc.runtime.trace import DEFAULT_EVENTS, Trace
from agentc.runtime.verify import read_json, verify_build

PLAN_FIELDS = ("agent", "inputs", "input_ids", "outputs", "devices", "ops", "indexes")


class Session:
    """A loaded build. `run(inputs)` is thread-safe; several requests may be in flight."""

    def __init__(self, build_dir, host_threads: int = 8, trace: Trace | None = None,
                 drivers: dict[str, str] | None = None, verify: bool = True, tool_threads: int = 8,
                 trace_events: int | None = DEFAULT_EVENTS, ray: str | None = None, plan: dict | None = None):
        """`drivers` overrides a device's HAL driver by device name (e.g. {"cpu": "local-sync"}).
        `ray`: a Ray cluster's address; each device's share then runs in an actor on a node
        that has the device (agentc/distributed), host operators and tools here, in the driver.
        `verify`: check every file against the build's manifest first (agentc/runtime/verify.py).
        `tool_threads`: the most graph.py tool calls that run at once (agentc/runtime/tool_pool.py).
        `trace_events`: the trace ring's size (None: keep every event).
        `plan`: a share of the build's plan to run instead of all of it (a serving stage's,
        agentc/serving/stage_plans.py): only its devices, modules and weights are loaded."""
        self.dir = Path(build_dir)
        self._share = plan
        self.devices: dict[str, Device] = {}
        self.ray, self.recovery = ray, None
        self.host: ThreadPoolExecutor | None = None
        self.tool_pool: ToolPool | None = None
        self.closed = False
        try:
            self._load(verify, drivers)
        except BaseException:
            self.close()  # what was opened before the failure
            raise
        self.host = ThreadPoolExecutor(max_workers=host_threads, thread_name_prefix="agentc-host")
        self.tool_pool = ToolPool(tool_threads)
        self.trace = trace or Trace(trace_events)
        self._requests = 0
        self._lock = threading.Lock()
        self._warned: set[str] = set()
        self.warnings = 0  # prompt truncations and the like, each also in the trace

    def _load(self, verify: bool, drivers: dict[str, str] | None) -> None:
        """Check the build, then open each device with its module and weights, and load
        the tokenizers and tools; every failure is a BuildError naming the file."""
        self.manifest = verify_build(self.dir, verify)
        self.plan = self._share if self._share is not None else read_json(self.dir / "plan.json", self.dir, "the plan")
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
        if self.ray is not None:
            from agentc.distributed.recovery import Recovery

            self.recovery = Recovery(self, drivers or {})
            self.devices = self.recovery.open()
        else:
            self._open_devices(drivers)
        self._check_functions()
        # The imported models' host side (tokenizer, chat template, end tokens) from the
        # build's own copy of their small files: no model directory or package needed.
        self.models = {name: registry.carried(name, m["key"], self.dir / m["dir"])
                       for name, m in self.plan.get("models", {}).items()}
        self.tools = self._load_tools()

    def _open_devices(self, drivers: dict[str, str] | None) -> None:
        """Each device in this process, with the build's memory-mapped weights."""
        self.weights = self._load_weights()
        for d, info in self.plan["devices"].items():
            try:
                vmfb = (self.dir / f"{info['module']}.vmfb").read_bytes()
            except OSError as e:
                raise BuildError(f"{e.filename}: cannot read the {d} module ({e.strerror}); "
                                 f"recompile the agent") from None
            try:
                self.devices[d] = Device(d, info["runtime"], vmfb, self.weights, (drivers or {}).get(d))
            except (RuntimeError, ValueError) as e:  # e.g. a weight the module names is in no archive
                first = str(e).splitlines()[0] if str(e) else type(e).__name__
                missing = re.search(r"no parameter found in index with key '[^']*'", first)
                raise BuildError(f"{self.dir}: device '{d}' could not load its module: "
                                 f"{missing.group(0) if missing else first}; recompile the agent") from None

    def _index_dependencies(self) -> None:
        """Per operator, the values it waits for (inputs and guards); per value, the
        operators that consume it. Requests count these down instead of rescanning the
        plan, and free a value once its last consumer has run."""
        self.deps = [sorted(set(op["inputs"]) | {g for g, _ in op["guards"]}) for op in self.ops]
        self.consumers: dict[str, list[int]] = {}
        for i, deps in enumerate(self.deps):
            for v in deps:
                self.consumers.setdefault(v, []).append(i)
        self.passages = {n: read_json(self.dir / rel, self.dir, f"index '{n}'")["passages"]
                         for n, rel in self.plan["indexes"].items()}
        self.ann = AnnIndexes(self.dir, self.plan.get("ann", {}))

    def _check_functions(self) -> None:
        """Every kernel the plan calls is in its device's module (a module copied in from
        another build would otherwise fail mid-request)."""
        for op in self.ops:
            if op["kind"] != "call":
                continue
            dev = self.devices.get(op["device"])
            if dev is None or not dev.has_function(op["callee"]):
                module = self.plan["devices"].get(op["device"], {}).get("module", op["device"])
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
        """The tools recorded at compile time (agentc/build/tools.py): the build's own
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
    def run(self, inputs: dict[str, str], fetch: list[str] | None = None, on_token=None) -> dict:
        """Run one request. Returns {"outputs": [...], "values": {op name: host value}}
        for the ops named in `fetch`. Raises InputError for inputs that are unknown,
        missing or not text, and RunError naming the failing node. `on_token(i, token)`
        hears each token of the LLM whose text is the agent's first output as it is made
        (`streamed` says whether there is one; a request run again after a lost device
        repeats them, with the same `i`)."""
        check_inputs(inputs, self.plan["inputs"])
        rid = self.next_request()
        if self.recovery is None:
            return Request(self, rid, inputs, fetch or [], on_token=on_token).execute()
        return self.recovery.run(lambda memo: Request(self, rid, inputs, fetch or [], memo, on_token))

    def share(self, plan: dict) -> Share:
        """A part of this session's plan (one call of a serving stage, agentc/serving/
        stage_plans.py) run on this session's devices, host pool and trace."""
        return Share(self, plan)

    def next_request(self) -> int:
        with self._lock:
            if self.closed:
                raise RunError("the session is closed; load the build again (agentc.load)")
            self._requests += 1
            return self._requests

    @functools.cached_property
    def streamed(self) -> tuple[list[str], str] | None:
        """(the token values, the model) of the LLM whose text is the first output, if the
        agent's first output is an LLM's text (a `detokenize`); else None. Found once: a
        re-placement changes operators' devices, not the graph."""
        out = self.plan["outputs"][0] if self.plan["outputs"] else None
        producer = next((op for op in self.ops if out in op["outputs"]), None)
        if producer is None or producer["kind"] != "detokenize":
            return None
        return producer["inputs"], producer["attrs"]["model"]

    def warn(self, op: dict, request: int, message: str) -> None:
        """A request went on, but not as written (a prompt cut to the model's budget): an
        instant event in the trace every time, one stderr line per node per session."""
        now = time.perf_counter()
        self.trace.add(op["device"] if op["kind"] == "call" else "host", op["name"], request, now, now,
                       note=message)
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
        says so on stderr. Closing twice does nothing more."""
        if self.closed:
            return []
        self.closed = True
        if self.host is not None:
            self.host.shutdown(wait=True, cancel_futures=True)
        stuck = self.tool_pool.close() if self.tool_pool is not None else []
        for d in self.devices.values():
            d.close()
        self.devices = {}
        self.weights = None  # the parameter index: IREE objects must not outlive the session
        if self.recovery is not None:
            self.recovery.close()
        if stuck:
            print(f"agentc: warning: closed with {len(stuck)} tool call(s) still running past their "
                  f"timeouts, abandoned: {', '.join(stuck)}", file=sys.stderr, flush=True)
        return stuck

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Share:
    """Part of a session's plan, run on the session's devices: a request of it takes its
    inputs by value id, whatever their type (token ids, tensors, text, skipped values), and
    returns its outputs as host values. Everything but the plan is the session's."""

    def __init__(self, session: Session, plan: dict):
        self._session = session
        self.plan, self.ops = plan, plan["ops"]
        Session._index_dependencies(self)

    def __getattr__(self, name):
        return getattr(self._session, name)

    def run_values(self, values: dict) -> list:
        return Request(self, self._session.next_request(), values, []).execute()["outputs"]


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


