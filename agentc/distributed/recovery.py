"""A session on Ray: opening its devices as actors, and placing the plan again when one is
lost.

When a call fails because a device's actor or node is gone (`DeviceLost`), the request is
run again from its inputs on a new placement; tool calls it already made are not repeated
(their results are kept), every other operator is. The first request to notice re-places,
under a lock; others wait for it and run on the result:

1. Lost: the devices whose actors do not answer, and every device of their nodes.
2. Re-placed with CP-SAT on what survives (agentc/placement/problem.py: the build's own
   placement problem, warm-started from the old placement repaired), within the build's
   solver time limit. A device not pinned to a node (a build for local device kinds) is
   started again on another node of its kind instead, when one exists.
3. Each device's module: the build's where the new share equals the old one, else outlined
   from the build's operators.mlir and compiled now (cached in the store for next time).
4. Devices whose module did not change keep their actors; new ones start (files sent to
   their nodes). Requests that started on the old placement finish on it unless they too
   lose a device; the old actors stop after them.

Each re-placement is logged (stderr, and an instant event on the trace's `placement`
track) with the lost devices and the old and new predicted latency; a new placement that
misses the SLA is reported and used. Policy when a device comes back: none automatic; the
session keeps the placement it has, and loading the build again uses the original one.
"""

from __future__ import annotations

import hashlib
import json
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from agentc.distributed.connect import connect, nodes
from agentc.distributed.inventory import ray_nodes
from agentc.distributed.remote_device import RemoteDevice
from agentc.runtime.host_ops import BuildError, DeviceLost, RunError

MAX_RUNS = 4  # a request that loses devices this many times fails


class Recovery:
    def __init__(self, session, drivers: dict[str, str]):
        self.s, self.drivers = session, drivers
        self.generation = 0
        self.inflight: dict[int, int] = {0: 0}
        self.retiring: dict[int, list[RemoteDevice]] = {}
        self.events: list[dict] = []  # one per re-placement
        self._lock = threading.Lock()
        self._replacing = threading.Lock()
        self._problem = None
        self.spares: dict[str, object] = {}  # node -> a device actor started ahead, not opened
        self.closed = False

    # -- opening ------------------------------------------------------------------------
    def open(self) -> dict[str, RemoteDevice]:
        connect(self.s.ray)
        self._check_cluster(self.s.plan["devices"])
        shas = self.s.manifest["files"]
        files = {d: (self.s.dir / f"{info['module']}.vmfb", shas[f"{info['module']}.vmfb"],
                     [(self.s.dir / w, shas.get(w)) for w in info.get("weights", self.s.plan.get("weights", []))])
                 for d, info in self.s.plan["devices"].items()}
        devices = self._start(self.s.plan["devices"], files)
        self._replenish()
        return devices

    def _start(self, devices: dict[str, dict], files: dict) -> dict[str, RemoteDevice]:
        """Actors for `devices` (name -> runtime, node), started side by side."""
        with self._lock:
            spares = {d: self.spares.pop(info["node"]) for d, info in devices.items()
                      if info.get("node") in self.spares}
        started = {d: RemoteDevice(d, info["runtime"], info.get("node"), self.drivers.get(d), spares.get(d))
                   for d, info in devices.items()}
        try:
            with ThreadPoolExecutor(max_workers=max(1, len(started))) as pool:
                for f in [pool.submit(dev.start, *files[d]) for d, dev in started.items()]:
                    f.result()
        except BaseException:
            for dev in started.values():
                dev.close()
            raise
        return started

    def _check_cluster(self, devices: dict[str, dict]) -> None:
        """Every device the plan uses has a live node of its kind (and its node, if pinned)."""
        live = ray_nodes(nodes())
        for d, info in devices.items():
            kind, node = info["runtime"], info.get("node")
            ok = any(kind in n.spec.kinds and (node is None or n.spec.label == node) for n in live)
            if not ok:
                users = [op["name"] for op in self.s.ops if op["kind"] == "call" and op["device"] == d]
                more = f" (+{len(users) - 3} more)" if len(users) > 3 else ""
                at = f"node {node} with a {kind} device" if node else f"node with a {kind} device"
                raise BuildError(f"the Ray cluster at {self.s.ray} has no {at} (resource agentc.{kind}) for "
                                 f"device '{d}', which operators {', '.join(users[:3])}{more} need; "
                                 f"agentc devices --ray {self.s.ray} lists what it has")

    # -- requests ------------------------------------------------------------------------
    def run(self, make_request) -> dict:
        memo: dict = {}
        error = None
        for _ in range(MAX_RUNS):
            with self._lock:
                gen = self.generation
                self.inflight[gen] += 1
            try:
                return make_request(memo).execute()
            except DeviceLost as e:
                error = e
                self.replace(gen, e)
            finally:
                self._left(gen)
        raise RunError(f"the request lost a device {MAX_RUNS} times; last: {error}")

    def _left(self, gen: int) -> None:
        with self._lock:
            self.inflight[gen] -= 1
            done = [g for g, n in self.inflight.items() if n == 0 and g < self.generation]
            closing = [dev for g in done for dev in self.retiring.pop(g, [])]
            for g in done:
                del self.inflight[g]
        for dev in closing:
            dev.close()

    # -- re-placement ---------------------------------------------------------------------
    def replace(self, gen: int, error: DeviceLost) -> None:
        with self._replacing:
            if self.generation != gen:
                return  # another request re-placed already
            t0 = time.perf_counter()
            old = self.s.devices
            with ThreadPoolExecutor(max_workers=max(1, len(old))) as pool:
                alive = dict(zip(old, pool.map(lambda d: d.alive(), old.values())))
            listed = ray_nodes(nodes())
            live_nodes = {n.spec.label for n in listed}
            dead_nodes = {old[d].node for d, ok in alive.items() if not ok and old[d].node}
            problem = self.problem()
            all_devices = problem["devices"]
            dead_nodes |= {i["node"] for i in all_devices.values() if i.get("node") and i["node"] not in live_nodes}
            lost = {d for d, ok in alive.items() if not ok}
            if not lost and not dead_nodes:
                return  # nothing is gone after all (a transient error): run again as it is
            removed = {d for d, i in all_devices.items() if i.get("node") in dead_nodes}
            live = [n for n in listed if n.spec.label not in dead_nodes]
            removed |= {d for d, i in all_devices.items() if not i.get("node")
                        and not any(i["runtime"] in n.spec.kinds for n in live)}
            self._switch(gen, old, lost | removed, removed, alive, error, t0)
            self._replenish(dead_nodes)

    def _switch(self, gen, old, lost, removed, alive, error, t0) -> None:
        from agentc.placement.problem import replace
        from agentc.scheduler.taskgraph import ScheduleError

        problem = self.problem()
        previous = {op["name"]: op["device"] for op in self.s.ops}
        marks = [("find lost", time.perf_counter())]
        try:
            sched, _ = replace(problem, removed, previous)
        except ScheduleError as e:
            raise RunError(f"lost {', '.join(sorted(lost))} and cannot place the agent on what survives: {e}") from None
        marks.append(("solve", time.perf_counter()))
        solved = sched.solve_time_s
        assignment = {n: s.processor for n, s in sched.assignment.items()}
        devices, files, compiled = self._modules(assignment, sched)
        marks.append(("modules", time.perf_counter()))
        keep = {d: old[d] for d in devices if d in old and alive.get(d) and files[d][1] == old[d].module_sha}
        fresh = self._start({d: info for d, info in devices.items() if d not in keep},
                            {d: files[d] for d in devices if d not in keep})
        marks.append(("start devices", time.perf_counter()))
        new_devices = {**keep, **fresh}
        ops = [dict(op, device=assignment[op["name"]]) if op["kind"] == "call" else op for op in self.s.ops]
        before = self.s.plan.get("placement", {}).get("predicted_ms")
        plan = dict(self.s.plan, devices=devices,
                    placement=dict(self.s.plan.get("placement", {}), predicted_ms=sched.makespan * 1e3))
        with self._lock:
            self.s.ops, self.s.devices, self.s.plan = ops, new_devices, plan
            self.generation += 1
            self.inflight.setdefault(self.generation, 0)
            gone = [dev for d, dev in old.items() if new_devices.get(d) is not dev]
            self.retiring.setdefault(gen, []).extend(gone)
        sla = problem.get("sla_ms")
        event = {"lost": sorted(lost), "cause": str(error), "old_predicted_ms": before,
                 "new_predicted_ms": sched.makespan * 1e3, "solve_s": solved, "status": sched.status,
                 "compiled": compiled, "started": sorted(fresh), "seconds": time.perf_counter() - t0,
                 "began": t0, "phases_s": {name: at - prev for (name, at), prev in
                                           zip(marks, [t0] + [at for _, at in marks[:-1]])},
                 "meets_sla": sla is None or sched.makespan * 1e3 <= sla,
                 "devices": sorted(new_devices)}
        self.events.append(event)
        miss = "" if event["meets_sla"] else f"; misses the SLA of {sla:g} ms"
        old_ms = f"{before:.1f} ms" if before is not None else "?"
        line = (f"lost {', '.join(event['lost'])}: re-placed on {', '.join(event['devices'])} in "
                f"{event['seconds']:.2f} s (solve {solved:.2f} s, {sched.status}); predicted {old_ms} -> "
                f"{event['new_predicted_ms']:.1f} ms{miss}")
        now = time.perf_counter()
        self.s.trace.add("placement", "re-placement", 0, now, now, note=line)
        print(f"agentc: {line}", file=sys.stderr, flush=True)

    def problem(self) -> dict:
        from agentc.placement.problem import PROBLEM_FILE

        if self._problem is None:
            path = self.s.dir / PROBLEM_FILE
            try:
                self._problem = json.loads(path.read_text())
            except (OSError, ValueError) as e:
                raise RunError(f"{path}: cannot re-place without it ({e}); recompile the agent") from None
        return self._problem

    def _modules(self, assignment: dict[str, str], sched):
        """Per device of the new placement: its plan entry and (module, sha, weights)
        files; the build's module where its share is unchanged, else compiled now."""
        from agentc.build.iree_compile import compile_module
        from agentc.build.write import module_file, outline
        from agentc.devices import KINDS
        from agentc.ir import context

        problem = self.problem()
        runtimes = {d: i["runtime"] for d, i in problem["devices"].items()}
        ctx = context()
        with ctx:
            from torch_mlir import ir

            module = ir.Module.parse((self.s.dir / "operators.mlir").read_text())
        placed = {n: (d, sched.assignment[n].start, sched.assignment[n].end) for n, d in assignment.items()}
        _, texts, archives = outline(ctx, module, placed, runtimes)
        shas = self.s.manifest["files"]
        devices, files, compiled = {}, {}, []
        for d, text in sorted(texts.items()):
            name = module_file(d)
            built = self.s.dir / f"{name}.mlir"
            weights = [(self.s.dir / w, shas.get(w)) for w in archives.get(d, [])]
            if built.is_file() and built.read_text() == text and f"{name}.vmfb" in shas:
                files[d] = (self.s.dir / f"{name}.vmfb", shas[f"{name}.vmfb"], weights)
            else:
                kind = KINDS[runtimes[d]]
                vmfb, hit = compile_module(text, kind.target, kind.compile_flags, d)
                files[d] = (vmfb, hashlib.sha256(vmfb).hexdigest(), weights)
                compiled.append(f"{d} ({'cached' if hit else 'compiled'})")
            devices[d] = {"runtime": runtimes[d], "module": name, "node": problem["devices"][d].get("node"),
                          "weights": archives.get(d, [])}
        return devices, files, compiled

    def _replenish(self, dead: set[str] = frozenset()) -> None:
        """A spare actor on every live node with devices that has none (started in the
        background: a node's first re-placement then opens a running actor, ~1 s sooner)."""
        from agentc.distributed.remote_device import spare_actor

        with self._lock:
            for node in [n for n, _ in self.spares.items() if n in dead]:
                self._kill(self.spares.pop(node))
            if self.closed:
                return
            for n in ray_nodes(nodes()):
                if n.spec.kinds and n.spec.label not in dead and n.spec.label not in self.spares:
                    self.spares[n.spec.label] = spare_actor(n.spec.label)

    @staticmethod
    def _kill(actor) -> None:
        import ray

        try:
            ray.kill(actor, no_restart=True)
        except Exception:  # noqa: BLE001, S110 - it may be gone with its node
            pass

    def close(self) -> None:
        with self._lock:
            self.closed = True
            closing = [dev for devs in self.retiring.values() for dev in devs]
            self.retiring.clear()
            for actor in self.spares.values():
                self._kill(actor)
            self.spares.clear()
        for dev in closing:
            dev.close()
