"""`agentc bench ray`: what running a plan across Ray nodes costs, against Ray itself.

On a local three-node cluster (`agentc ray up --node cpu --node cpu --node cpu`, started
and stopped by the bench): the tiny RAG and fan-out agents, compiled for it with their
operators pinned across nodes 2 and 3 (the host on node 1), run alternately in-process (the
anchor, same build, same placement) and across the nodes, one request at a time.

    cost per cross-node hop = (request across nodes - request in-process) / inter-node transfers

(medians, and P99 of the per-request differences, pairing each Ray request with the
in-process one beside it). Transfers are counted from the plan: values whose producer and
consumer are on different nodes (host work is on node 1). In the same run, a bare Ray actor
chain of the same shape (driver -> actor on node 2 -> actor on node 3 -> driver, a 1x384
float32 array) and the same chain as a Ray Compiled Graph. Goal: agentc's cost per hop
<= 1.2x the bare actor call's.

Then recovery: requests run back to back while node 2 is SIGKILLed; the time from the kill
to the first request completed on the new placement, CP-SAT solve included, for the tiny
RAG and (`--real`, after node 2 is started again) the real RAG. The modules of the placement
on the survivors are compiled (cached) before the kill; the surviving nodes hold no files of
the devices they take over (their weights travel then); each node has a spare actor
running. Goal (the real RAG plan): <= 2 s.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

AGENTS = {"rag": "examples/rag_agent.py", "fanout": "examples/fanout_agent.py"}
REAL = "examples/rag_agent_real.py"
QUERY = {"query": "What is 12 * 7 and where does the Rhine flow?"}


def _say(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def rag_split(name: str) -> str:
    """Retrieval on node 2, the LLM on node 3."""
    return "n2.cpu" if name.startswith(("embed", "retrieve")) else "n3.cpu"


def fanout_split(name: str) -> str:
    """The panel's LLM calls alternate between nodes 2 and 3; the summary on node 3."""
    head = name.split("/", 1)[0]
    digits = "".join(c for c in head if c.isdigit())
    return "n2.cpu" if digits and int(digits) % 2 == 0 else "n3.cpu"


SPLITS = {"rag": rag_split, "fanout": fanout_split, "rag_real": rag_split}


def inter_node_transfers(plan: dict) -> int:
    """Values that cross nodes in one request, as the runtime moves them: (value, consuming
    node) pairs whose value is on another node; host work (and inputs) on node 1. The
    end-of-turn check passes its token on where it is (runtime/host_ops.forward), so the next
    decode step reads it on its own node; the check itself reads it on the host."""
    node = {d: info.get("node") or "n1" for d, info in plan["devices"].items()}
    where = {v: "n1" for v in plan["input_ids"]}
    crossings = set()
    for op in plan["ops"]:
        here = node.get(op["device"], "n1") if op["kind"] == "call" else "n1"
        for v in list(op["inputs"]) + [g for g, _ in op["guards"]]:
            if where.get(v, "n1") != here:
                crossings.add((v, here))
        for v in op["outputs"]:
            where[v] = where.get(op["inputs"][0], "n1") if op["kind"] == "stop_at_eos" else here
    return len(crossings)


def write_trace(events: list[tuple], path: Path) -> None:
    """One request's events as a Chrome/Perfetto trace: a track per device and per
    node-to-node transfer, and the host."""
    from agentc.runtime.trace import Trace

    one = Trace(None)
    one.t0 = min((e[3] for e in events), default=0.0)
    for track, name, req, start, end, note in events:
        one.add(track, name, req, start, end, note=note)
    one.write(path)


def _p(values: list[float], q: float) -> float:
    xs = sorted(values)
    return xs[min(len(xs) - 1, round(q * (len(xs) - 1)))]


def paired(agent: str, build: Path, address: str, requests: int, out: Path) -> dict:
    import json

    import agentc

    plan = json.loads((build / "plan.json").read_text())
    hops = inter_node_transfers(plan)
    with agentc.load(build) as local, agentc.load(build, ray=address) as remote:
        for _ in range(3):  # warm: first calls, node files, caches
            local.run(QUERY)
            remote.run(QUERY)
        t_local, t_ray = [], []
        for i in range(requests):
            for s, times in ((local, t_local), (remote, t_ray)) if i % 2 == 0 else ((remote, t_ray), (local, t_local)):
                t0 = time.perf_counter()
                s.run(QUERY)
                times.append(time.perf_counter() - t0)
        mark = remote.trace.added
        remote.run(QUERY)
        write_trace(remote.trace.since(mark), out / f"trace-{agent}.json")
    diffs = [(r - lo) / max(hops, 1) for r, lo in zip(t_ray, t_local)]
    res = {"transfers": hops, "local_ms": [t * 1e3 for t in t_local], "ray_ms": [t * 1e3 for t in t_ray],
           "local_median_ms": statistics.median(t_local) * 1e3, "ray_median_ms": statistics.median(t_ray) * 1e3,
           "hop_median_ms": (statistics.median(t_ray) - statistics.median(t_local)) / max(hops, 1) * 1e3,
           "hop_p99_ms": _p(diffs, 0.99) * 1e3, "devices": sorted(plan["devices"])}
    _say(f"{agent}: in-process {res['local_median_ms']:.1f} ms, across nodes {res['ray_median_ms']:.1f} ms, "
         f"{hops} inter-node transfers: {res['hop_median_ms']:.2f} ms per hop (P99 {res['hop_p99_ms']:.2f})")
    return res


def bare_chain(requests: int) -> dict:
    """driver -> actor on n2 -> actor on n3 -> driver, plain actor calls and a Compiled Graph."""
    import numpy as np
    import ray

    @ray.remote(num_cpus=0)
    class Stage:
        def step(self, x):
            return x + 1

    a = Stage.options(resources={"agentc.node.n2": 0.001}).remote()
    b = Stage.options(resources={"agentc.node.n3": 0.001}).remote()
    x = np.zeros((1, 384), np.float32)
    for _ in range(5):
        ray.get(b.step.remote(a.step.remote(x)))
    chain = []
    for _ in range(requests):
        t0 = time.perf_counter()
        ray.get(b.step.remote(a.step.remote(x)))
        chain.append(time.perf_counter() - t0)
    out = {"actor_chain_ms": [t * 1e3 for t in chain], "actor_hop_median_ms": statistics.median(chain) / 2 * 1e3,
           "actor_hop_p99_ms": _p(chain, 0.99) / 2 * 1e3}
    try:
        from ray.dag import InputNode

        with InputNode() as inp:
            dag = b.step.bind(a.step.bind(inp))
        compiled = dag.experimental_compile()
        for _ in range(5):
            ray.get(compiled.execute(x))
        cg = []
        for _ in range(requests):
            t0 = time.perf_counter()
            ray.get(compiled.execute(x))
            cg.append(time.perf_counter() - t0)
        compiled.teardown()
        out.update({"compiled_chain_ms": [t * 1e3 for t in cg], "compiled_hop_median_ms": statistics.median(cg) / 2 * 1e3,
                    "compiled_hop_p99_ms": _p(cg, 0.99) / 2 * 1e3})
    except Exception as e:  # noqa: BLE001 - reported: Compiled Graphs are experimental in Ray 2.58
        out["compiled_error"] = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
    for actor in (a, b):
        ray.kill(actor)
    _say(f"bare Ray: actor call {out['actor_hop_median_ms']:.2f} ms per hop"
         + (f", compiled graph {out['compiled_hop_median_ms']:.2f} ms" if "compiled_hop_median_ms" in out
            else f", compiled graph failed: {out.get('compiled_error')}"))
    return out


def recovery(agent: str, build: Path, address: str, directory: Path, out: Path) -> dict:
    """SIGKILL node 2 under back-to-back requests; kill -> first request done on the new placement."""
    import agentc
    from agentc.distributed import local_cluster
    from agentc.placement.problem import replace

    with agentc.load(build, ray=address) as s:
        s.run(QUERY)
        lost = {d for d, i in s.recovery.problem()["devices"].items() if i.get("node") == "n2"}
        sched, _ = replace(s.recovery.problem(), lost, {op["name"]: op["device"] for op in s.ops})
        t0 = time.perf_counter()
        s.recovery._modules({n: sl.processor for n, sl in sched.assignment.items()}, sched)  # precompile
        precompile_s = time.perf_counter() - t0
        done: list[tuple[float, int]] = []
        errors: list[str] = []
        stop = threading.Event()

        def loop():
            while not stop.is_set():
                try:
                    began = time.perf_counter()
                    s.run(QUERY)
                    done.append((time.perf_counter(), s.recovery.generation, began))
                except Exception as e:  # noqa: BLE001 - counted: no request may be lost
                    errors.append(str(e))

        t = threading.Thread(target=loop)
        t.start()
        time.sleep(1.0)
        killed = time.perf_counter()
        mark = s.trace.added
        local_cluster.down(2, directory=directory, kill=True)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not any(g >= 1 and at > killed for at, g, _ in done):
            time.sleep(0.05)
        time.sleep(0.5)  # a few requests on the new placement, for the timeline
        stop.set()
        t.join()
        write_trace(s.trace.since(mark), out / f"trace-recovery-{agent}.json")
        first = min((at for at, g, _ in done if g >= 1 and at > killed), default=None)
        ev = s.recovery.events[0] if s.recovery.events else {}
    out = {"kill_to_first_request_s": None if first is None else first - killed, "errors": errors,
           "replacement": ev, "precompile_s": precompile_s, "requests_done": len(done),
           "kill_to_noticed_s": ev["began"] - killed if "began" in ev else None,
           "timeline": [{"done_s": at - killed, "latency_ms": (at - began) * 1e3, "placement": g}
                        for at, g, began in done]}
    _say(f"{agent}: SIGKILL of node 2 -> first request on the new placement "
         f"{out['kill_to_first_request_s'] if first is None else round(out['kill_to_first_request_s'], 3)} s "
         f"(noticed after {out['kill_to_noticed_s'] or float('nan'):.2f} s; re-placement "
         f"{ev.get('seconds', float('nan')):.2f} s: "
         + ", ".join(f"{k} {v:.2f}" for k, v in ev.get("phases_s", {}).items()) + "); "
         f"{len(errors)} requests lost")
    return out


def plot(results: dict, path: Path) -> None:
    """Cost per hop beside Ray's own, and each recovery's request latencies around the kill."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    recs = results["recovery"]
    fig, axes = plt.subplots(1, 1 + len(recs), figsize=(5 + 5 * len(recs), 4))
    bars = {f"agentc {a}": r["hop_median_ms"] for a, r in results["agents"].items()}
    bars["bare actor call"] = results["bare"]["actor_hop_median_ms"]
    if "compiled_hop_median_ms" in results["bare"]:
        bars["compiled graph"] = results["bare"]["compiled_hop_median_ms"]
    axes[0].bar(list(bars), list(bars.values()), color=["C0"] * len(results["agents"]) + ["C7", "C8"][:len(bars) - len(results["agents"])])
    axes[0].set_ylabel("ms per cross-node hop (median)")
    axes[0].set_title("cost per hop")
    axes[0].tick_params(axis="x", rotation=20)
    for ax, (agent, r) in zip(axes[1:], recs.items()):
        for gen, color in ((0, "C0"), (1, "C2")):
            pts = [(p["done_s"], p["latency_ms"]) for p in r["timeline"] if min(p["placement"], 1) == gen]
            ax.scatter([x for x, _ in pts], [y for _, y in pts], s=8, color=color,
                       label="old placement" if gen == 0 else "new placement")
        ax.axvline(0, color="C3", label="SIGKILL node 2")
        if r.get("kill_to_noticed_s") is not None:
            ax.axvline(r["kill_to_noticed_s"], color="C1", linestyle="--", label="loss noticed")
        ax.set_xlabel("s since the kill (request end)")
        ax.set_ylabel("request latency, ms")
        ax.set_title(f"{agent}: kill -> first request on new placement {r['kill_to_first_request_s'] or float('nan'):.2f} s")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run(args, out: Path):
    import signal

    import agentc
    from agentc.distributed import connect, local_cluster
    from agentc.distributed.inventory import cluster_yaml, ray_nodes

    # SIGTERM ends the bench through its `finally`, which stops the nodes it started.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    requests = args.requests or 30
    agents = list(AGENTS) + (["rag_real"] if getattr(args, "real", False) else [])
    results: dict = {"agents": {}, "recovery": {}}
    with tempfile.TemporaryDirectory(prefix="agentc-bench-ray-") as tmp:
        tmp = Path(tmp)
        directory = tmp / "cluster"
        import os

        os.environ["AGENTC_RAY_DIR"] = str(directory)
        _say("starting a 3-node local Ray cluster")
        state = local_cluster.up(["cpu", "cpu", "cpu"], directory=directory, progress=_say)
        try:
            connect.connect(state["address"])
            (tmp / "cluster.yaml").write_text(cluster_yaml(ray_nodes(connect.nodes()), state["address"]))
            builds = {}
            for agent in agents:
                _say(f"compiling {agent} for the cluster, pinned across nodes 2 and 3")
                builds[agent] = tmp / agent
                agentc.compile(AGENTS.get(agent, REAL), str(builds[agent]), cluster=str(tmp / "cluster.yaml"),
                               assign=SPLITS[agent], quiet=True)
            for agent in agents:
                if agent != "rag_real":
                    results["agents"][agent] = paired(agent, builds[agent], state["address"], requests, out)
            results["bare"] = bare_chain(requests * 2)
            results["recovery"]["rag"] = recovery("rag", builds["rag"], state["address"], directory, out)
            if "rag_real" in agents:
                _say("starting node 2 again")
                local_cluster.restart(2, directory)
                results["recovery"]["rag_real"] = recovery("rag_real", builds["rag_real"], state["address"], directory, out)
        finally:
            import ray

            ray.shutdown()
            local_cluster.down(directory=directory)
    plot(results, out / "ray.png")
    bare = results["bare"]["actor_hop_median_ms"]
    summary = {}
    for agent, r in results["agents"].items():
        summary[f"{agent}_hop_ms"] = round(r["hop_median_ms"], 3)
        summary[f"{agent}_hop_p99_ms"] = round(r["hop_p99_ms"], 3)
        summary[f"{agent}_hop_over_bare"] = round(r["hop_median_ms"] / bare, 2)
    summary["bare_actor_hop_ms"] = round(bare, 3)
    if "compiled_hop_median_ms" in results["bare"]:
        summary["compiled_graph_hop_ms"] = round(results["bare"]["compiled_hop_median_ms"], 3)
    for agent, r in results["recovery"].items():
        if r["kill_to_first_request_s"] is not None:
            summary[f"{agent}_recovery_s"] = round(r["kill_to_first_request_s"], 3)
        summary[f"{agent}_lost_requests"] = len(r["errors"])
    params = {"nodes": ["cpu", "cpu", "cpu"], "requests": requests, "agents": agents,
              "placement": "operators pinned: rag retrieval n2, LLM n3; fan-out branches alternate n2/n3; host n1"}
    return params, results, summary
