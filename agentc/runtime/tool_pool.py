"""The threads that run graph.py tools: bounded, so a tool that hangs cannot leak threads.

Python cannot stop a thread, so a tool call that exceeds its `timeout_ms` is abandoned: the
request fails at once, and the call keeps its thread until it returns on its own. A thread
per call would leak one thread per timed-out request (and one per request, forever, for a
tool that never returns). Here at most `threads` tool calls run at once; a call that finds
every thread held by an abandoned call fails at once with an error naming them, instead of
queueing behind calls that may never end. Threads are daemons: a hung tool does not keep
the process from exiting.
"""

from __future__ import annotations

import collections
import queue
import threading
import time
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout

from agentc.runtime.host_ops import RunError


class ToolPool:
    def __init__(self, threads: int = 8):
        if threads < 1:
            raise ValueError(f"tool_threads must be >= 1, got {threads}")
        self.threads = threads
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._workers = 0
        self._idle = 0
        self._queued = 0
        self._stuck: dict[int, tuple[str, float]] = {}  # job id -> (tool, when abandoned)
        self._closed = False
        self.abandoned_total = 0

    def stuck(self) -> list[str]:
        """The tools whose calls were abandoned and still hold a thread."""
        with self._lock:
            return sorted(name for name, _ in self._stuck.values())

    def thread_count(self) -> int:
        return self._workers

    def call(self, name: str, fn, args: list, timeout_s: float):
        """fn(*args) on a pool thread, bounded by `timeout_s` (queueing included)."""
        fut: Future = Future()
        with self._lock:
            if self._closed:
                raise RunError(f"tool '{name}' not started: the session is closed")
            if len(self._stuck) >= self.threads:
                held = ", ".join(f"{n} x{c}" for n, c in collections.Counter(
                    n for n, _ in self._stuck.values()).most_common())
                raise RunError(f"tool '{name}' not started: all {self.threads} tool threads are held by "
                               f"calls that exceeded their timeouts and have not returned ({held}); "
                               f"fix those tools or load the build with more tool_threads")
            self._queued += 1
            if self._queued > self._idle and self._workers < self.threads:
                self._workers += 1
                threading.Thread(target=self._work, daemon=True, name=f"agentc-tool-{self._workers}").start()
        self._jobs.put((fut, fn, args))
        try:
            return fut.result(timeout=timeout_s)
        except FutureTimeout:
            if fut.cancel():  # never started: nothing to abandon
                raise
            with self._lock:
                if not fut.done():
                    self._stuck[id(fut)] = (name, time.monotonic())
                    self.abandoned_total += 1
            fut.add_done_callback(self._returned)
            raise

    def _returned(self, fut: Future) -> None:
        with self._lock:
            self._stuck.pop(id(fut), None)

    def _work(self) -> None:
        while True:
            with self._lock:
                self._idle += 1
            job = self._jobs.get()
            with self._lock:
                self._idle -= 1
                if job is not None:
                    self._queued -= 1
            if job is None:
                with self._lock:
                    self._workers -= 1
                return
            fut, fn, args = job
            if not fut.set_running_or_notify_cancel():
                continue
            try:
                fut.set_result(fn(*args))
            except BaseException as e:  # noqa: BLE001 - handed to the caller through the future
                fut.set_exception(e)
            del fut, fn, args, job

    def close(self) -> list[str]:
        """Stop idle threads; returns the abandoned tools still running (their threads end
        when they return)."""
        with self._lock:
            self._closed = True
            workers = self._workers
        for _ in range(workers):
            self._jobs.put(None)
        return self.stuck()
