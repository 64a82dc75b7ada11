"""One request of a session, run as dataflow: operators start as soon as their inputs and
guards are ready, each on the device the plan placed it on; values are freed once their
last consumer has run; a failing operator fails the request, naming its node."""

from __future__ import annotations

import threading
import time
from collections import deque

import numpy as np

from agentc.runtime.host_ops import (
    INLINE_HOST_OPS,
    SKIPPED,
    DeviceLost,
    RunError,
    forward,
    run_host_op,
    skipped_inputs,
)
from agentc.runtime.values import pop_values


class Request:
    def __init__(self, s, rid: int, inputs: dict, fetch: list[str], memo: dict | None = None, on_token=None):
        """`s`: the Session (its plan, devices, host pool, tools and trace). The request runs
        on the placement in use when it starts (`ops`, `devices`); `memo` keeps its tool
        results across runs of it (a run again after a device was lost repeats no tool)."""
        self.s, self.rid, self.fetch = s, rid, fetch
        self.ops, self.devices = s.ops, s.devices
        self.memo = memo if memo is not None else {}
        self.on_token = on_token  # (i, token) of the streamed LLM (Session.run)
        streamed = s.streamed if on_token is not None else None
        self.stream_at = {v: i for i, v in enumerate(streamed[0])} if streamed else {}
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
                    if self.s.closed and self.error is None:  # work it queued may never run
                        self.error = RunError("the session was closed while the request ran")
            if self.error is not None:
                raise self.error
            outs = [self._host(v) for v in self.s.plan["outputs"]]
            fetched = {op["name"]: self._host(op["outputs"][0]) for op in self.ops if op["name"] in self.fetch}
            return {"outputs": outs, "values": fetched}
        finally:
            with self.cv:
                self.done = True  # operators still running drop their results (_finish)
            self._release(list(self.values))

    def _release(self, vids: list[str]) -> None:
        """Drop values; device-resident ones are freed on their devices' threads
        (agentc/runtime/values.py)."""
        with self.cv:
            by_device = pop_values(vids, self.values, self.copies, self.devices)
        self._free(by_device)

    def _free(self, by_device: dict[str, list]) -> None:
        for where, vals in by_device.items():
            self.devices[where].release(vals)

    def _launch(self, ready: list[int]) -> None:
        """Start operators whose inputs are ready. A loop, not recursion: skipping finishes
        an operator at once and readies the next, and after an end-of-turn that chain runs
        through every remaining layer of every remaining decode step."""
        queue = deque(ready)
        while queue and self.error is None:
            i = queue.popleft()
            op = self.ops[i]
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
        return all(self.values[v][0] == "host" or self.devices[self.values[v][0]].owns_thread()
                   for v in op["inputs"]) and not op["guards"]

    def _foreign(self, op) -> bool:
        own = op["device"] if op["kind"] == "call" else "host"
        deps = [(v, own) for v in op["inputs"]] + [(g, "host") for g, _ in op["guards"]]
        return any(self.values[v][0] not in ("host", want) for v, want in deps)

    def _dispatch(self, i: int, inline: bool = False) -> list[int]:
        """Queue operator i, or with `inline` run it (a host op) on this thread; returns the
        operators it readied if it finished at once."""
        op = self.ops[i]
        try:
            if self.s.closed:
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
        self.devices[op["device"]].worker.submit(self._run_call, i, args)
        return []

    def _run_call(self, i: int, args):
        op = self.ops[i]
        dev = self.devices[op["device"]]
        t0 = time.perf_counter()
        try:
            if self.s.closed:
                raise RunError("the session was closed while the request ran")
            outs = dev.call(op["callee"], args, len(op["outputs"]), lambda err, spans: self._reported(op, err, spans))
        except BaseException as e:  # noqa: BLE001 - reported as the request's error, naming the node
            self._fail(op, e)
            return
        del args  # the operands' last references, if the request already let go of them
        if not dev.asynchronous:
            self.s.trace.add(op["device"], op["name"], self.rid, t0, time.perf_counter())
        self._launch(self._finish(i, [(op["device"], r) for r in outs]))

    def _reported(self, op, error, spans) -> None:
        """A call that runs on after `call` returned (a remote device) has ended: its
        failure fails the request, naming the node; its spans go into the trace (the
        operator on its device's track, inputs from other nodes on `src -> dst` tracks)."""
        if error is not None:
            self._fail(op, error)
            return
        for track, start, end in spans:
            self.s.trace.add(track, op["name"] if track == op["device"] else "transfer", self.rid, start, end)

    def _run_host_op(self, i: int):
        self._launch(self._host_op(i))

    def _host_op(self, i: int) -> list[int]:
        op = self.ops[i]
        t0 = time.perf_counter()
        try:
            args = [self._host(v) for v in op["inputs"]]
            outs = self.memo.get(op["name"]) if op["kind"] == "tool" else None
            if outs is None:
                outs = run_host_op(op["kind"], op["attrs"], args, len(op["outputs"]), self.s.passages, self.s.tools,
                                   self.s.tool_pool, lambda msg: self.s.warn(op, self.rid, msg), self.s.models,
                                   self.s.ann)
                if op["kind"] == "tool":
                    self.memo[op["name"]] = outs
        except BaseException as e:  # noqa: BLE001 - reported as the request's error, naming the node
            self._fail(op, e)
            return []
        self.s.trace.add("host", op["name"], self.rid, t0, time.perf_counter())
        return self._finish(i, forward(outs, args, [self.values[v] for v in op["inputs"]]))

    def _fail(self, op, e: BaseException) -> None:
        with self.cv:
            if self.error is None and isinstance(e, DeviceLost):
                self.error = e  # the session re-places and runs the request again
            elif self.error is None:
                msg = e.args[0] if isinstance(e, RunError) and e.args else f"{type(e).__name__}: {e}"
                self.error = RunError(f"node '{op['name']}' ({op['loc']}): {msg}")
            self.cv.notify_all()

    def _finish(self, i: int, placed: list) -> list[int]:
        """Record operator i's results, each (where, value); returns the operators that are
        now ready."""
        op, ready, spent = self.ops[i], [], []
        with self.cv:
            if self.done:  # the request failed or was interrupted while this operator ran
                late: dict[str, list] = {}
                for where, val in placed:
                    if where in self.devices:
                        late.setdefault(where, []).append(val)
                self._free(late)
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
        for vid, (_, val) in zip(op["outputs"], placed):
            if vid in self.stream_at and val is not SKIPPED:
                try:
                    self.on_token(self.stream_at[vid], self._host(vid))
                except BaseException as e:  # noqa: BLE001 - the listener's failure is the request's
                    self._fail(op, e)
        self._release(spent)
        return ready

    # -- values -----------------------------------------------------------------------
    def _host(self, vid):
        where, val = self.values[vid]
        if where == "host" or val is SKIPPED or isinstance(val, (str, bool, np.ndarray)):
            return val
        copy = self.copies.get(vid)
        if copy is None:
            copy = self.devices[where].to_host(val)
            with self.cv:
                self.copies[vid] = copy
        return copy

    def _on(self, vid, device: str):
        """Value `vid` for a call on `device`: where it is, else moved there straight from
        the device that holds it if the two can (Ray actors), else through the host."""
        where, val = self.values[vid]
        if where == device:
            return val
        if where in self.devices and vid not in self.copies:
            moved = self.devices[where].export_to(val, self.devices[device])
            if moved is not None:
                return moved
        return self._host(vid)
