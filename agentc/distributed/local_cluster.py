"""`agentc ray up | down`: a multi-node Ray cluster on this machine, for trying a build
across nodes (and losing one) without several machines.

Each node is a real `ray start --block` process in its own session (process group), so
`down` stops exactly the nodes it started (`ray stop` would stop every Ray process of the
user). Each node gets its own agentc cache (`AGENTC_CACHE`), so nodes share no build files
with the driver or each other, and an object store of at most `object_store_mb`.

Security: a Ray cluster runs whatever code reaches it. The nodes start with Ray's token
authentication (`RAY_AUTH_MODE=token`; the token is a 0600 file in the state directory,
which `agentc.distributed.connect` hands to clients of this address), no dashboard, and the
client server on loopback. Ray 2.58 replaces the node address 127.0.0.1 (exactly that, or
`localhost`) with the machine's, so the nodes of `--host 127.0.0.1` (the default) take
127.0.0.2, also loopback: what Ray binds to the node address (its client server, the
dashboard agent's HTTP port, the runtime-env agent) then stays on this machine. Its GCS,
raylets and metrics ports listen on every interface whatever the address (Ray has no flag to
bind them): without the token, a connection to them from elsewhere is refused.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from agentc.distributed.node_spec import NodeSpec, parse_node, ray_start_args

STATE = "state.json"
START_TIMEOUT_S = 90.0
# Node loss is noticed by the GCS's health checks; Ray's defaults (3 s x 5) take ~15 s.
LOOPBACK = "127.0.0.2"  # a loopback address Ray keeps (it rewrites 127.0.0.1)
HEALTH_CHECK_ENV = {"RAY_health_check_period_ms": "1000", "RAY_health_check_timeout_ms": "1000",
                    "RAY_health_check_failure_threshold": "2"}


class ClusterError(RuntimeError):
    """The local cluster cannot be started or stopped as asked; the message says why."""


def state_dir() -> Path:
    """Where `ray up` keeps its nodes' state, logs, caches and token."""
    return Path(os.environ.get("AGENTC_RAY_DIR") or Path(tempfile.gettempdir()) / f"agentc-ray-{os.getuid()}")


def read_state(directory: Path | None = None) -> dict | None:
    path = (directory or state_dir()) / STATE
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        raise ClusterError(f"{path}: unreadable ({e}); remove it and stop its nodes by hand") from None


def _write_state(directory: Path, state: dict) -> None:
    tmp = directory / (STATE + ".tmp")
    tmp.write_text(json.dumps(state, indent=1))
    tmp.replace(directory / STATE)


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _alive(pid: int) -> bool:
    """Is the node's `ray start` (or anything it started) still running?"""
    return bool(node_processes(pid))


def up(nodes: list[str], host: str = "127.0.0.1", object_store_mb: int = 512, directory: Path | None = None,
       progress=None, logical: tuple[str, ...] = ()) -> dict:
    """Start a head (`nodes[0]`) and workers, each `--node` spec's devices as resources;
    returns the state (address, token path, nodes). Refuses if this state directory has a
    cluster up."""
    directory = directory or state_dir()
    host = LOOPBACK if host in ("127.0.0.1", "localhost") else host
    specs = [parse_node(text, f"n{i + 1}") for i, text in enumerate(nodes)]
    if not specs:
        raise ClusterError("agentc ray up: give at least one --node (the head), e.g. --node cpu")
    if logical:  # device types the head advertises without having them (`logical`: emulated serving)
        import dataclasses

        specs[0] = dataclasses.replace(specs[0], logical=tuple(logical))
    if not 64 <= object_store_mb <= 512:
        raise ClusterError(f"--object-store-mb: between 64 and 512, got {object_store_mb}")
    old = read_state(directory)
    if old and any(_alive(n["pid"]) for n in old["nodes"]):
        raise ClusterError(f"a cluster from {directory} is already up at {old['address']}: agentc ray down first")
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True, mode=0o700)
    token = directory / "token"
    token.write_text(secrets.token_hex(32))
    token.chmod(0o600)
    port = free_port()
    # Ray's sockets live under its temp dir, and a socket path has at most 107 bytes.
    ray_tmp = tempfile.mkdtemp(prefix="agentc-ray-", dir="/tmp" if Path("/tmp").is_dir() else None)
    state = {"address": None, "token": str(token), "directory": str(directory), "ray_tmp": ray_tmp, "nodes": []}
    say = progress or (lambda msg: None)
    try:
        say(f"starting head n1 ({specs[0].describe()})")
        head = _start(specs[0], state, token, host, object_store_mb,
                      ["--head", "--port", str(port), "--ray-client-server-port", str(free_port()),
                       "--include-dashboard", "false", "--dashboard-host", "127.0.0.1"], nodes[0])
        state["address"] = _address(head, port, host)
        _write_state(directory, state)
        state.update(host=host, object_store_mb=object_store_mb)
        for s, text in zip(specs[1:], nodes[1:]):  # one at a time: side by side, raylets on two cores time out
            say(f"starting {s.label} ({s.describe()})")
            _start(s, state, token, host, object_store_mb, ["--address", state["address"]], text)
            _write_state(directory, state)
    except BaseException:
        _stop_all(state)
        shutil.rmtree(ray_tmp, ignore_errors=True)
        raise
    return state


def _start(spec: NodeSpec, state: dict, token: Path, host: str, store_mb: int, extra: list[str],
           text: str = "") -> dict:
    node_dir = Path(state["directory"]) / spec.label
    (node_dir / "cache").mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=str(token),
               AGENTC_CACHE=str(node_dir / "cache"), RAY_USAGE_STATS_ENABLED="0", **HEALTH_CHECK_ENV)
    env.pop("RAY_AUTH_TOKEN", None)
    ray = Path(sys.executable).with_name("ray")
    cmd = [str(ray if ray.exists() else "ray"), "start", "--block", "--node-ip-address", host,
           "--num-cpus", "1", "--object-store-memory", str(store_mb * 2**20), "--temp-dir",
           state["ray_tmp"], "--disable-usage-stats", *ray_start_args(spec), *extra]
    log = node_dir / "ray.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                start_new_session=True)
    node = {"label": spec.label, "spec": spec.describe(), "text": text, "pid": proc.pid, "log": str(log),
            "cache": str(node_dir / "cache"), "stopped": False}
    state["nodes"].append(node)
    _write_state(Path(state["directory"]), state)  # before waiting: `down` must find it, whatever happens next
    _wait_started(node)
    return node


def _wait_started(node: dict) -> None:
    """Until the node's `ray start --block` says its processes are up (or it exits)."""
    deadline = time.monotonic() + START_TIMEOUT_S
    log = Path(node["log"])
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace")
        if "will now block forever" in text:
            return
        if not _alive(node["pid"]) or _exited(node["pid"]):
            last = [ln for ln in text.splitlines() if ln.strip()][-1:] or ["(no output)"]
            raise ClusterError(f"node {node['label']}: ray start failed: {last[0].strip()} (log: {log})")
        time.sleep(0.2)
    raise ClusterError(f"node {node['label']}: not up after {START_TIMEOUT_S:.0f} s (log: {log})")


def _exited(pid: int) -> bool:
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == pid
    except ChildProcessError:
        return False


def _address(head: dict, port: int, host: str) -> str:
    """The address the head took, as its own log says (Ray may resolve a name)."""
    found = re.search(r"--address='([^']+)'", Path(head["log"]).read_text(errors="replace"))
    return found.group(1) if found else f"{host}:{port}"


def restart(node: int, directory: Path | None = None) -> str:
    """Start the N-th node again after `down --node N` (a device that comes back), with its
    devices and its cache as before. Returns its label."""
    directory = directory or state_dir()
    state = read_state(directory)
    if state is None:
        raise ClusterError(f"no cluster started by agentc ray up ({directory / STATE} not found)")
    if not 2 <= node <= len(state["nodes"]):
        raise ClusterError(f"--node {node}: the workers are nodes 2 to {len(state['nodes'])}")
    old = state["nodes"][node - 1]
    if _alive(old["pid"]):
        raise ClusterError(f"node {old['label']} is running; stop it first (agentc ray down --node {node})")
    spec = parse_node(old["text"], old["label"])
    state["nodes"].pop(node - 1)
    fresh = _start(spec, state, Path(state["token"]), state.get("host", "127.0.0.1"),
                   state.get("object_store_mb", 512), ["--address", state["address"]], old["text"])
    state["nodes"].insert(node - 1, state["nodes"].pop())
    _write_state(directory, state)
    return fresh["label"]


def down(node: int | None = None, directory: Path | None = None, kill: bool = False) -> list[str]:
    """Stop what `up` started: every node (workers first), or with `node` the N-th one
    (1-based, in `--node` order; the head is refused). `kill`: SIGKILL, as a machine that
    dies. Returns the labels stopped."""
    directory = directory or state_dir()
    state = read_state(directory)
    if state is None:
        raise ClusterError(f"no cluster started by agentc ray up ({directory / STATE} not found)")
    if node is None:
        stopped = _stop_all(state)
        shutil.rmtree(directory, ignore_errors=True)
        if state.get("ray_tmp"):
            shutil.rmtree(state["ray_tmp"], ignore_errors=True)
        return stopped
    if node == 1:
        raise ClusterError("--node 1 is the head: stop the whole cluster with agentc ray down")
    if not 1 <= node <= len(state["nodes"]):
        raise ClusterError(f"--node {node}: the cluster has nodes 1 to {len(state['nodes'])}")
    n = state["nodes"][node - 1]
    _stop(n, signal.SIGKILL if kill else signal.SIGTERM)
    n["stopped"] = True
    _write_state(directory, state)
    return [n["label"]]


def _stop_all(state: dict) -> list[str]:
    stopped = []
    for n in reversed(state["nodes"]):
        if _alive(n["pid"]):
            _stop(n, signal.SIGTERM)
            stopped.append(n["label"])
    return stopped[::-1]


def _stop(node: dict, sig: int, grace_s: float = 20.0) -> None:
    """Signal every process of the node (ray start, its raylet, and the workers the raylet
    started, which Ray puts in process groups of their own), then SIGKILL what is left
    after `grace_s`."""
    pid = node["pid"]
    for p in node_processes(pid):
        _signal(p, sig)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and node_processes(pid):
        _exited(pid)
        time.sleep(0.1)
    for p in node_processes(pid):
        _signal(p, signal.SIGKILL)
    _exited(pid)


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _group_alive(pgid: int) -> bool:
    return bool(node_processes(pgid))


def _table() -> dict[int, tuple[int, int]]:
    """pid -> (parent pid, process group) of every running process (zombies left out: they
    hold nothing, and where PID 1 does not reap orphans, as in some containers, they never
    leave)."""
    out = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z":
            out[int(entry.name)] = (int(fields[1]), int(fields[2]))
    return out


def node_processes(pgid: int) -> list[int]:
    """The running processes of a node started as process group `pgid`, and all their
    descendants."""
    table = _table()
    found = {p for p, (_, g) in table.items() if g == pgid}
    grew = True
    while grew:
        more = {p for p, (parent, _) in table.items() if parent in found and p not in found}
        found |= more
        grew = bool(more)
    return sorted(found)
