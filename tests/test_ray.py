"""A build across a real multi-node Ray cluster on this machine (three `ray start` nodes with
different agentc devices, started once for the module): actors land on the nodes the plan
names, outputs equal the single-process runtime's, the build travels to the nodes, and a
node killed mid-request leads to a re-placement with no request lost."""

import json
import os
import re
import shutil
import threading
import time
from pathlib import Path

import pytest

import agentc
from agentc.bench.ray_hops import fanout_split
from agentc.distributed import local_cluster
from agentc.runtime.host_ops import BuildError
from tests.conftest import EXAMPLES, GRAPHS, VULKAN, agentc_cli

pytest.importorskip("ray")
pytestmark = VULKAN

QUERIES = [{"query": "What is 12 * 7?"}, {"query": "Where does the Rhine flow?"}]
NODES = ["cpu", "cpu,vulkan", "cpu"]


def split(name: str) -> str:
    """Encoder on n2's lavapipe, vector search on n2's cpu, the LLM on n3: every request
    crosses nodes (n2 -> n3, and the host on n1 to both)."""
    if name.startswith("embed"):
        return "n2.vulkan"
    if name.startswith("retrieve"):
        return "n2.cpu"
    return "n3.cpu"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    directory = tmp_path_factory.mktemp("ray") / "state"
    old = os.environ.get("AGENTC_RAY_DIR")
    os.environ["AGENTC_RAY_DIR"] = str(directory)
    state = local_cluster.up(NODES, directory=directory)
    pids = [n["pid"] for n in state["nodes"]]
    try:
        yield state
    finally:
        import ray

        ray.shutdown()
        local_cluster.down(directory=directory)
        if old is None:
            os.environ.pop("AGENTC_RAY_DIR", None)
        else:
            os.environ["AGENTC_RAY_DIR"] = old
    for pid in pids:  # every process of every node's group is gone
        assert local_cluster.node_processes(pid) == [], pid


@pytest.fixture(scope="module")
def cluster_file(cluster, tmp_path_factory):
    out = tmp_path_factory.mktemp("cluster") / "cluster.yaml"
    r = agentc_cli("cluster", "from-ray", cluster["address"], "-o", out,
                   env={"AGENTC_RAY_DIR": os.environ["AGENTC_RAY_DIR"]})
    assert r.returncode == 0, r.stderr
    return out


@pytest.fixture(scope="module")
def split_build(cluster_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("rag_split")
    agentc.compile(str(EXAMPLES / "rag_agent.py"), str(out), cluster=str(cluster_file), assign=split, quiet=True)
    with agentc.load(out) as s:
        reference = [s.run(q)["outputs"] for q in QUERIES]
    return out, reference


def test_devices_as_resources(cluster, cluster_file):
    r = agentc_cli("devices", "--ray", cluster["address"], env={"AGENTC_RAY_DIR": os.environ["AGENTC_RAY_DIR"]})
    assert r.returncode == 0, r.stderr
    rows = {ln.split()[2]: ln.split()[0] for ln in r.stdout.splitlines()[2:]}
    assert rows == {"n1.cpu": "n1", "n2.cpu": "n2", "n2.vulkan": "n2", "n3.cpu": "n3"}
    from agentc.placement.cluster_file import load_cluster

    c = load_cluster(cluster_file)
    assert {d.name: d.node for d in c.devices.values()} == rows
    # Host memory is shared on the head only: a cpu on another node is priced as a transfer.
    assert c.devices["n1.cpu"].spec.memory_space == "host"
    assert c.devices["n3.cpu"].spec.memory_space == "host@n3"
    assert c.devices["n2.cpu"].host_link is not None


def test_outputs_equal_single_process_and_actors_on_their_nodes(cluster, split_build):
    import ray

    build, reference = split_build
    with agentc.load(build, ray=cluster["address"]) as s:
        assert [s.run(q)["outputs"] for q in QUERIES] == reference
        node_ids = {n["Resources"] and next(k for k in n["Resources"] if k.startswith("agentc.node.")): n["NodeID"]
                    for n in ray.nodes() if n["Alive"]}
        for name, dev in s.devices.items():
            assert dev.info["node_id"] == node_ids[f"agentc.node.{name.split('.')[0]}"], name
        tracks = {e[0] for e in s.trace.events}
        assert {"n2.vulkan", "n2.cpu", "n3.cpu", "host"} <= tracks
        assert any("->" in t for t in tracks), tracks  # a transfer span between nodes


def test_several_requests_in_flight(cluster, split_build):
    build, reference = split_build
    with agentc.load(build, ray=cluster["address"]) as s:
        results = [None] * 8
        workers = [threading.Thread(target=lambda i=i: results.__setitem__(i, s.run(QUERIES[i % 2])["outputs"]))
                   for i in range(8)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
    assert results == [reference[i % 2] for i in range(8)]


@pytest.mark.parametrize("graph, inputs, assign", [
    (EXAMPLES / "fanout_agent.py", {"query": "Is tea better than coffee?"}, fanout_split),
    (EXAMPLES / "fanout_agent.py", {"query": "Is tea better than coffee?"}, None),
    (GRAPHS / "faults.py", {"query": "a good question"}, None),
    (GRAPHS / "tools.py", {"q": "echo this"}, None),
], ids=["fanout-across-nodes", "fanout-placed", "faults-placed", "tools-host-only"])
def test_example_and_test_agents_equal_single_process(cluster, cluster_file, tmp_path, graph, inputs, assign):
    build = tmp_path / "b"
    agentc.compile(str(graph), str(build), cluster=str(cluster_file), quiet=True,
                   **({"assign": assign} if assign else {}))
    with agentc.load(build) as s:
        reference = s.run(inputs)["outputs"]
    with agentc.load(build, ray=cluster["address"]) as s:
        assert s.run(inputs)["outputs"] == reference
        if assign is fanout_split:  # independent branches on two nodes run at the same time
            assert s.trace.overlaps("n2.cpu", "n3.cpu")


@pytest.mark.slow
def test_real_rag_across_nodes(cluster, cluster_file, tmp_path):
    """MiniLM and the vector search on node 2, SmolLM2-135M on node 3 (its 540 MB of
    weights sent there in chunks through the object store)."""
    build = tmp_path / "real"
    agentc.compile(str(EXAMPLES / "rag_agent_real.py"), str(build), cluster=str(cluster_file), assign=split,
                   quiet=True)
    q = {"query": "What is 12 * 7 and where does the Rhine flow?"}
    with agentc.load(build) as s:
        reference = s.run(q)["outputs"]
    with agentc.load(build, ray=cluster["address"]) as s:
        assert s.run(q)["outputs"] == reference


def test_the_build_travels(cluster, split_build, tmp_path):
    """Actors open their node's copies (through the object store), never the build: the
    build directory can move away once loaded, and nothing of it is mapped by an actor."""
    build, reference = split_build
    moved = tmp_path / "elsewhere"
    shutil.copytree(build, moved)
    with agentc.load(moved, ray=cluster["address"]) as s:
        gone = tmp_path / "gone"
        moved.rename(gone)
        assert [s.run(q)["outputs"] for q in QUERIES] == reference
        for name, dev in s.devices.items():
            maps = Path(f"/proc/{dev.info['pid']}/maps").read_text()
            mapped = set(re.findall(r"(/\S+\.irpa)", maps))
            assert mapped, name  # weights are memory-mapped from the node's files
            assert all(p.startswith(dev.info["files"]) for p in mapped), mapped
            assert dev.info["files"].startswith(os.environ["AGENTC_RAY_DIR"]), dev.info["files"]
        # Only its own weights: the vector search node has the index, not the LLM.
        n2 = Path(f"/proc/{s.devices['n2.cpu'].info['pid']}/maps").read_text()
        size = {p.stat().st_size for p in (build / "weights").glob("tiny-lm.irpa")}
        assert len(set(re.findall(r"(/\S+\.irpa)", n2))) == 1, size


def test_missing_device_kind_and_bad_address(cluster, split_build, tmp_path):
    build, _ = split_build
    r = agentc_cli("run", build, "--ray", "127.0.0.1:1", "--input", "query=hi")
    assert r.returncode == 2 and "no Ray cluster answers there" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
    copy = tmp_path / "b"
    shutil.copytree(build, copy)
    plan = json.loads((copy / "plan.json").read_text())
    plan["devices"]["n2.vulkan"]["node"] = "n9"
    (copy / "plan.json").write_text(json.dumps(plan))
    with pytest.raises(BuildError, match=r"no node n9 with a vulkan device .* embed_query/encode"):
        agentc.load(copy, ray=cluster["address"], verify=False)


def test_module_that_fails_to_load_names_device_and_node(cluster, split_build, tmp_path):
    build, _ = split_build
    copy = tmp_path / "b"
    shutil.copytree(build, copy)
    (copy / "n3.cpu.vmfb").write_bytes(b"not a module")
    manifest = json.loads((copy / "manifest.json").read_text())
    import hashlib

    manifest["files"]["n3.cpu.vmfb"] = hashlib.sha256(b"not a module").hexdigest()
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BuildError, match=r"device 'n3.cpu' \(node n3.*could not load n3.cpu.vmfb"):
        agentc.load(copy, ray=cluster["address"], verify=False)


def test_token_and_loopback(cluster):
    """The nodes took a loopback address, the token is the owner's alone, and a client
    without it is refused."""
    import stat
    import subprocess
    import sys

    assert cluster["address"].startswith("127.0.0.2:"), cluster["address"]
    assert stat.S_IMODE(Path(cluster["token"]).stat().st_mode) == 0o600
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH")}
    env["HOME"] = str(Path(cluster["directory"]) / "nohome")  # no ~/.ray/auth_token either
    r = subprocess.run([sys.executable, "-c", f"import ray; ray.init(address='{cluster['address']}')"],
                       capture_output=True, text=True, env=env, timeout=120, check=False)
    assert r.returncode != 0 and "Authentication token is missing or incorrect" in r.stderr, r.stderr[-500:]


def test_head_cannot_be_stopped_alone(cluster):
    with pytest.raises(local_cluster.ClusterError, match="head"):
        local_cluster.down(1)


def test_served_across_nodes(cluster, split_build):
    """`agentc serve --ray`: the replica's devices are actors on the nodes; HTTP answers equal
    the single-process runtime."""
    import urllib.request

    from agentc.serving.server import serve_build

    build, reference = split_build
    port = local_cluster.free_port()
    stop, up = threading.Event(), threading.Event()
    t = threading.Thread(target=serve_build, args=(build, cluster["address"]),
                         kwargs={"port": port, "ready": lambda url: up.set(), "stop": stop})
    t.start()
    try:
        assert up.wait(300)
        for q, ref in zip(QUERIES, reference):
            req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/agents/rag", data=json.dumps(q).encode())
            with urllib.request.urlopen(req, timeout=60) as r:
                assert json.loads(r.read())["outputs"] == ref
    finally:
        stop.set()
        t.join(120)


def test_node_killed_mid_request(cluster, split_build):
    """Last: it kills node 2. Requests run back to back while it dies; none is lost, a
    re-placement happened, and the next 20 requests succeed on the new placement."""
    build, reference = split_build
    with agentc.load(build, ray=cluster["address"]) as s:
        done, errors = [], []
        stop = threading.Event()

        def loop():
            while not stop.is_set():
                try:
                    done.append(s.run(QUERIES[0])["outputs"])
                except Exception as e:  # noqa: BLE001 - recorded, asserted below
                    errors.append(e)

        t = threading.Thread(target=loop)
        t.start()
        time.sleep(1.0)
        local_cluster.down(2, kill=True)
        deadline = time.monotonic() + 60
        while not s.recovery.events and time.monotonic() < deadline and t.is_alive():
            time.sleep(0.1)
        stop.set()
        t.join()
        assert not errors, errors
        assert s.recovery.events, "no re-placement"
        ev = s.recovery.events[0]
        assert set(ev["lost"]) >= {"n2.cpu", "n2.vulkan"} and not any(d.startswith("n2.") for d in ev["devices"])
        assert all(out == reference[0] for out in done)
        after = [s.run(QUERIES[i % 2])["outputs"] for i in range(20)]
        assert after == [reference[i % 2] for i in range(20)]
        assert any(e[0] == "placement" for e in s.trace.events)


@pytest.mark.parametrize("args, message", [
    (["ray", "up", "--node", "gpu"], "--node gpu: unknown device kind 'gpu'"),
    (["ray", "up", "--node", "cpu", "--object-store-mb", "2000"], "--object-store-mb: between 64 and 512"),
    (["ray", "down"], "no cluster started by agentc ray up"),
    (["ray", "down", "--node", "2"], "no cluster started by agentc ray up"),
    (["devices", "--ray", "127.0.0.1:1"], "--ray 127.0.0.1:1: no Ray cluster answers there"),
    (["cluster", "from-ray", "nonsense"], "--ray nonsense: expected HOST:PORT"),
    (["ray", "flags", "--node", "cpu", "--name", "a b"], "--name: a node name is letters"),
])
def test_bad_ray_commands_are_one_line(args, message, tmp_path):
    r = agentc_cli(*args, env={"AGENTC_RAY_DIR": str(tmp_path / "none")})
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert message in r.stderr and "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_flags_for_a_machine_started_by_hand():
    r = agentc_cli("ray", "flags", "--node", "cpu,cuda=nvidia-h100-sxm", "--name", "gpu1")
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout.split("--resources ")[1].split(" --labels")[0].strip("'"))
    assert res == {"agentc.node.gpu1": 1.0, "agentc.cpu": 1.0, "agentc.type.cpu": 1.0, "agentc.cuda": 1.0,
                   "agentc.type.nvidia-h100-sxm": 1.0}


def test_cluster_file_node_must_be_a_name(tmp_path):
    from agentc.frontend.graph import AgentError
    from agentc.placement.cluster_file import load_cluster

    path = tmp_path / "c.yaml"
    path.write_text("devices:\n  - {type: cpu, name: a, node: 3}\n")
    with pytest.raises(AgentError, match=r"c.yaml:2: devices\[0\].node: expected a machine name"):
        load_cluster(path)
