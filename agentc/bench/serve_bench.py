"""`agentc bench serve`: agentc's dynamic serving against static deployments, in simulated
time (agentc/serving/simulate.py), and the compound-AI effects.

Workload: the real RAG agent and the fan-out agent placed on examples/clusters/t4_h100_cpu.yaml
(two T4s, an H100, CPU servers), their stages' service times the placement's per-operator
predictions, the LLM stage's following each request's GeneratedTokens (capped at the call's
max_tokens); SLA = 2x the unloaded P50 of the arrivals; scale-to-zero on (min 0 replicas);
replica start time measured here (a fresh process opening the real RAG build, or the tiny
one with --quick). Per agent and arrival process (the code trace's whole hour, Gamma CV=4 at the
trace's mean rate, the conversation trace as a control): the dynamic run and the three static
baselines (agentc/serving/compare.py), their ratios; then all four again with replicas that
batch calls (agentc/serving/batching.py, curves from `agentc bench batching`: CURVES), the
static ones sized for the same batches.

Effects (item 7 of the serving issue): fan-out overhead (latency minus the slowest branch,
widths 1-16, one LLM replica and one per branch); cascading cold start (first response from
zero for the RAG chain of three stages, joint vs reactive scaling); heterogeneous scaling
(replicas per stage over a burst).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from agentc.serving.arrivals import Arrival, gamma, read_trace, reshape, steps
from agentc.serving.autoscale import ScalePolicy
from agentc.serving.batching import factors, for_graph
from agentc.serving.compare import compare, key_line, table
from agentc.serving.simulate import Deployment, simulate
from agentc.serving.simulated_run import per_stage, with_sla
from agentc.serving.stages import from_placement

CLUSTER = "examples/clusters/t4_h100_cpu.yaml"
# Batching curves per device type (agentc bench batching): the GPUs' measured on an H100 (the
# T4 takes the H100's shape: no T4 is lent here), the CPU servers' on this machine's CPU.
GPU_CURVES, CPU_CURVES = "docs/results/batching/h100/summary.json", "docs/results/batching/summary.json"
CURVES = f"nvidia-t4={GPU_CURVES},nvidia-h100-sxm={GPU_CURVES},this-machine-cpu={CPU_CURVES}"
MAX_BATCH = 16
TRACES = Path(__file__).resolve().parents[2].parent / "shared" / "traces"
AGENTS = {"rag": "examples/rag_agent_real.py", "fanout": "examples/fanout_agent.py"}
FANOUT = '''import agentc

@agentc.agent(sla_ms=3000)
def panel(query):
    def ask(k):
        return agentc.llm(agentc.format("View {k}: {q}", k=k, q=query), model="tiny-lm", max_tokens=8)
    views = agentc.fanout(ask, [str(k) for k in range({width})], reduce=lambda o: agentc.join(o, "\\n", name="views"))
    return agentc.llm(agentc.format("Summarise:\\n{{0}}", views), model="tiny-lm", max_tokens=8, name="summary")
'''


def _say(msg: str) -> None:
    print(f"[bench serve] {msg}", file=sys.stderr, flush=True)


def _start_s(quick: bool) -> tuple[float, str]:
    """A replica's start, measured: a fresh process that imports agentc and opens the build
    (agentc/serving/emulated.py), the median of three."""
    import statistics

    import agentc
    from agentc.serving.emulated import measured_process_start_s

    graph = "examples/rag_agent.py" if quick else AGENTS["rag"]
    build = Path(tempfile.mkdtemp(prefix="agentc-bench-serve-")) / "build"
    agentc.compile(graph, str(build), devices=["cpu"], quiet=True)
    return statistics.median(measured_process_start_s(build) for _ in range(3)), graph


def _arrival_sets(quick: bool) -> dict[str, list[Arrival]]:
    code = read_trace(TRACES / "azure_llm_2023_code.csv")
    conv = read_trace(TRACES / "azure_llm_2023_conv.csv")
    hour = 600.0 if quick else 3600.0
    code_h = reshape(code, duration_s=hour)
    mean = len(code_h) / hour
    return {"code": code_h,
            "gamma_cv4": [Arrival(a.at, 0, g.generated_tokens) for a, g in
                          zip(gamma(mean, 4.0, hour, seed=1), _cycle(code_h))],
            "conv": reshape(conv, duration_s=hour)}


def _cycle(xs):
    while True:
        yield from xs


def run(args, out: Path):
    from agentc.compiler import place_file

    quick = bool(getattr(args, "quick", False))
    start_s, measured_on = _start_s(quick)
    _say(f"replica start {start_s:.2f} s (measured: {measured_on})")
    sets = _arrival_sets(quick)
    results, summary = {}, {}
    for agent, graph in AGENTS.items():
        base = from_placement(place_file(graph, CLUSTER))
        _say(f"{agent} stages:\n{base.table()}")
        for name, arrivals in sets.items():
            g = with_sla(base, arrivals, None)
            policy = ScalePolicy(sla_s=g.sla_s, service_s=g.latency_s(), start_s=start_s, min_replicas=0,
                                 max_replicas=64, hold_s=600.0)
            for batched in (False, True):
                batching = for_graph(g, CURVES, MAX_BATCH) if batched else {}
                label = f"{agent}_{name}" + ("_batched" if batched else "")

                def runner(scaling, replicas, g=g, arrivals=arrivals, policy=policy, batching=batching):
                    return simulate(g, arrivals, Deployment(scaling, replicas, policy, batching=batching))

                result, rows = compare(g, arrivals, runner, policy.target_utilisation, "simulate",
                                       progress=lambda m, a=label: _say(f"{a}: {m}"),
                                       factors=factors(g, batching))
                timeline = result["dynamic"].pop("timeline")
                result["stages"] = g.table()
                result["batching"] = {s: {"max_batch": b.max_batch, "curves": b.source} for s, b in batching.items()}
                results[label.replace("_", "/", 1)] = result
                _say(f"{label}:\n{table(result)}\n{key_line(result)}")
                _plot_run(rows, timeline, g, out / f"{label.replace('_', '-', 1)}.png",
                          f"{agent}, {name}{', batched' if batched else ''}: dynamic (simulated)")
                r = result["ratios"]
                for k in ("p95_ratio", "cost_ratio", "cost_ratio_iso_slo", "goodput_per_usd_ratio"):
                    summary[f"{label}_{k}"] = r[k]
                summary[f"{label}_slo_pct"] = result["dynamic"]["slo_pct"]
    if getattr(args, "emulate", False):
        results["validation"] = validate(start_s, out)
        v = results["validation"]
        summary["validate_sim_over_emulate_p50"] = v["sim_over_emulate_p50_ms"]
        summary["validate_sim_over_emulate_p95"] = v["sim_over_emulate_p95_ms"]
        summary["validate_emulate_valid"] = v["emulate"]["valid"]
        summary["validate_served_start_s"] = v["served_start_s"]
        summary["validate_sim_served_start_over_emulate_p95"] = v.get("sim_served_start_over_emulate_p95_ms")
        results["validation_real"] = vr = validate_real(out)
        summary["validate_emulate_over_real_p50"] = vr["emulate_over_real_p50_ms"]
        summary["validate_emulate_over_real_p95"] = vr["emulate_over_real_p95_ms"]
    results["effects"] = {"fanout_overhead": fanout_overhead(start_s), "cold_start": cold_start(start_s),
                          "heterogeneous": heterogeneous(start_s, out)}
    for k, v in results["effects"]["cold_start"].items():
        summary[f"cold_start_{k}_s"] = v
    _plot_effects(results["effects"], out / "effects.png")
    params = {"cluster": CLUSTER, "start_s": round(start_s, 3), "start_measured_on": measured_on, "quick": quick,
              "mode": "simulate"}
    return params, results, summary


def fanout_overhead(start_s: float) -> dict:
    """Latency minus the slowest branch, idle, for widths 1-16: on one LLM replica (the
    branches queue) and on one replica per branch."""
    from agentc.compiler import place_file

    out = {}
    for width in (1, 2, 4, 8, 16):
        with tempfile.TemporaryDirectory() as d:
            path = Path(d) / "fanout.py"
            path.write_text(FANOUT.replace("{width}", str(width)))
            g = from_placement(place_file(str(path), CLUSTER))
        slowest = max(c.service_s for c in g.calls if c.node != "summary")
        row = {}
        for label, n in (("one_replica", 1), ("replica_per_branch", width)):
            g2 = with_sla(g, [Arrival(0.0)], None)
            policy = ScalePolicy(sla_s=g2.sla_s * 100, service_s=g.latency_s(), start_s=start_s)
            rows, _ = simulate(g2, [Arrival(0.0)], Deployment("static", dict.fromkeys(g.stages, n), policy))
            row[label] = round(rows[0]["latency_ms"] - slowest * 1e3, 3)
        row["slowest_branch_ms"] = round(slowest * 1e3, 3)
        out[width] = row
        _say(f"fan-out width {width}: overhead {row}")
    return out


def cold_start(start_s: float) -> dict:
    """Time to the first response from zero replicas, RAG chain of three stages."""
    from agentc.compiler import place_file

    g = from_placement(place_file(AGENTS["rag"], CLUSTER))
    g = with_sla(g, [Arrival(0.0)], None)
    out = {}
    for scaling in ("joint", "reactive"):
        policy = ScalePolicy(sla_s=1e9, service_s=g.latency_s(), start_s=start_s, min_replicas=0)
        rows, _ = simulate(g, [Arrival(0.0)], Deployment(scaling, dict.fromkeys(g.stages, 0), policy, margin=1e9))
        out[scaling] = round(rows[0]["latency_ms"] / 1e3, 3)
    _say(f"cold start, 3-stage chain: {out}")
    return out


def heterogeneous(start_s: float, out: Path) -> dict:
    """Replicas per stage (and its device type) over a burst: 2/s, 30/s, 2/s, 20 s each."""
    from agentc.compiler import place_file

    g = from_placement(place_file(AGENTS["rag"], CLUSTER))
    arrivals = steps([2.0, 30.0, 2.0], 20.0, seed=3)
    g = with_sla(g, arrivals, None)
    policy = ScalePolicy(sla_s=g.sla_s, service_s=g.latency_s(), start_s=start_s, min_replicas=0, max_replicas=64,
                         downscale_delay_s=10.0)
    _, costs = simulate(g, arrivals, Deployment("joint", dict.fromkeys(g.stages, 1), policy))
    tracks = per_stage(costs["timeline"])
    return {f"{s} ({g.stages[s].device_type})": max(n for _, n in pts) for s, pts in tracks.items()} | {
        "timeline": {s: pts for s, pts in tracks.items()}}


def _plot_run(rows, timeline, g, path: Path, title: str) -> None:
    from agentc.serving.load_report import plot

    plot(rows, path, title, g.sla_s * 1e3, per_stage(timeline))


def _plot_effects(effects: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b, c) = plt.subplots(1, 3, figsize=(14, 4))
    fo = effects["fanout_overhead"]
    widths = sorted(fo)
    for key, color in (("one_replica", "C0"), ("replica_per_branch", "C2")):
        a.plot(widths, [fo[w][key] for w in widths], "o-", color=color, label=key.replace("_", " "))
    a.set_xscale("log", base=2)
    a.set_xlabel("fan-out width")
    a.set_ylabel("latency - slowest branch, ms")
    a.set_title("fan-out overhead (idle)")
    a.legend(fontsize=7)
    cs = effects["cold_start"]
    b.bar(list(cs), list(cs.values()), color=["C2", "C3"])
    b.set_ylabel("first response from zero, s")
    b.set_title("cold start, 3-stage chain")
    for s, pts in effects["heterogeneous"]["timeline"].items():
        c.step([t for t, _ in pts], [n for _, n in pts], where="post", label=s)
    c.set_xlabel("s (2/s, 30/s, 2/s)")
    c.set_ylabel("replicas")
    c.set_title("replicas per stage over a burst")
    c.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)



def validate(start_s: float, out: Path, window: tuple[float, float] = (900.0, 300.0), port: int | None = None,
             slots: int = 2, queue: bool = False) -> dict:
    """The simulator against the emulated staged service on the same window of the code
    trace (its RAG stages on the cluster, dynamic joint scaling): the service started in a
    process of its own, its per-call overhead measured idle (the simulator's `hop_s`), the
    load test's client in a third process, then the simulator on the same arrivals. `slots`:
    calls a stage replica takes at once, on both; `queue`: the service queues calls per stage
    at its ingress (simulated as one call per replica, the rest in the stage's queue)."""
    import dataclasses
    import json
    import shutil
    import statistics
    import subprocess
    import time
    import urllib.error
    import urllib.request

    from agentc.compiler import place_file
    from agentc.distributed.local_cluster import free_port
    from agentc.serving.simulated_run import runner_for

    base = from_placement(place_file(AGENTS["rag"], CLUSTER))
    arrivals = reshape(read_trace(TRACES / "azure_llm_2023_code.csv"), start_s=window[0], duration_s=window[1])
    g = with_sla(base, reshape(read_trace(TRACES / "azure_llm_2023_code.csv"), duration_s=3600.0), None)
    port = port or free_port()
    url = f"http://127.0.0.1:{port}"
    cli = str(Path(sys.executable).with_name("agentc"))
    common = ["--min-replicas", "0", "--max-replicas", "64"]
    work = Path(tempfile.mkdtemp(prefix="agentc-validate-"))  # raw runs stay out of the results
    server = _serve_process(cli, [AGENTS["rag"], "--emulate", "--staged", "--cluster", CLUSTER, "--start-s",
                                  f"{start_s}", "--sla-ms", f"{g.sla_s * 1e3}", "--stage-slots", str(slots), *common,
                                  *(["--stage-queue"] if queue else [])],
                            port, work / "serve.log")
    try:
        _say("emulated staged service up; measuring its per-call overhead idle")
        tokens = 10
        idle, refused = [], 0
        while len(idle) < 15 and refused < 30:
            req = urllib.request.Request(url + "/v1/agents/rag", data=b'{"query": "q"}',
                                         headers={"x-agentc-generated-tokens": str(tokens)})
            t0 = time.perf_counter()
            try:
                urllib.request.urlopen(req, timeout=60).read()
            except urllib.error.HTTPError as e:  # a replica still starting: say so, try again
                refused += 1
                _say(f"idle request answered {e.code}: {e.read()[:200]!r}; again in 1 s")
                time.sleep(1.0)
                continue
            idle.append(time.perf_counter() - t0)
        predicted = g.latency_s({c.node: c.service(tokens) for c in g.calls})
        depth = _depth(g)
        hop_s = max(0.0, (statistics.median(idle[3:]) - predicted) / depth)
        _say(f"idle {statistics.median(idle[3:]) * 1e3:.1f} ms vs predicted {predicted * 1e3:.1f} ms: "
             f"{hop_s * 1e3:.2f} ms per call ({depth} on the path)")
        _say(f"replaying the code trace from {window[0]:g} s for {window[1]:g} s (emulated, 1x)")
        subprocess.run([cli, "loadtest", url, "--trace", str(TRACES / "azure_llm_2023_code.csv"), "--start",
                        f"{window[0]}", "--duration", f"{window[1]}", "--sla-ms", f"{g.sla_s * 1e3}",
                        "--out", str(work / "emulate"), "--quiet"], check=True, capture_output=True)
        served_start = _served_start_s(url)
    finally:
        server.terminate()
        server.wait(120)
    emulated = json.loads((work / "emulate" / "report.json").read_text())
    shutil.copy(work / "emulate" / "loadtest.png", out / "validate-emulate.png")
    _say(f"raw run (requests.csv, server log): {work}")
    policy = ScalePolicy(sla_s=g.sla_s, service_s=g.latency_s(), start_s=start_s, min_replicas=0, max_replicas=64,
                         hold_s=600.0)
    from agentc.serving.compare import report

    sim_slots = 1 if queue else slots
    rows, costs = runner_for(g, arrivals, policy, 0.5, 120.0, hop_s, slots=sim_slots)("joint",
                                                                                       dict.fromkeys(g.stages, 1))
    simulated = report(rows, costs, g, arrivals[-1].at, "simulate")
    # Again with the replica start the service itself took (asked for to serving, on Serve).
    if served_start is not None:
        policy2 = dataclasses.replace(policy, start_s=served_start)
        rows2, costs2 = runner_for(g, arrivals, policy2, 0.5, 120.0, hop_s, slots=sim_slots)("joint",
                                                                                         dict.fromkeys(g.stages, 1))
        simulated_served_start = report(rows2, costs2, g, arrivals[-1].at, "simulate")
    keys = ("sent", "refused", "p50_ms", "p95_ms", "p99_ms", "slo_pct", "cost_usd", "send_lag_p99_ms", "valid")
    res = {"window_s": list(window), "slots": slots, "queue": queue, "hop_ms": round(hop_s * 1e3, 3), "idle_ms": [round(x * 1e3, 2) for x in idle],
           "predicted_idle_ms": round(predicted * 1e3, 2), "emulate": {k: emulated.get(k) for k in keys},
           "simulate": {k: simulated.get(k) for k in keys}, "served_start_s": served_start}
    if served_start is not None:
        res["simulate_served_start"] = {k: simulated_served_start.get(k) for k in keys}
    for name in ("simulate", "simulate_served_start"):
        for k in ("p50_ms", "p95_ms"):
            e, s = emulated.get(k), res.get(name, {}).get(k)
            ok = isinstance(e, (int, float)) and isinstance(s, (int, float)) and 0 < e < float("inf")
            res[f"{'sim' if name == 'simulate' else 'sim_served_start'}_over_emulate_{k}"] = \
                round(s / e, 4) if ok and s != float("inf") else None
    _say(f"validation: {res}")
    return res


def _depth(g) -> int:
    """Calls on the longest path of the stage graph."""
    depth: dict[str, int] = {}
    for c in g.calls:
        depth[c.node] = 1 + max((depth[a] for a in c.after), default=0)
    return max(depth.values(), default=1)


def _serve_process(cli: str, args: list[str], port: int, log: Path):
    """`agentc serve ...` in a process of its own, once it answers /healthz."""
    import subprocess
    import time
    import urllib.request

    with open(log, "wb") as f:
        server = subprocess.Popen([cli, "serve", *args, "--port", str(port)], stdout=subprocess.DEVNULL, stderr=f)
    for _ in range(150):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2).read()
            return server
        except OSError:
            if server.poll() is not None:
                raise RuntimeError(f"agentc serve {' '.join(args)} exited: see {log}") from None
            time.sleep(1)
    server.terminate()
    raise RuntimeError(f"agentc serve {' '.join(args)} did not answer in 150 s: see {log}")


def validate_real(out: Path, rate: float = 4.0, duration_s: float = 60.0) -> dict:
    """Emulation against real compute at a rate this machine holds: the tiny RAG build
    served in stages that compute (one replica per stage, static), then emulated with the
    service times measured here (agentc/serving/measured.py), each under the same Gamma
    arrivals from a client in its own process."""
    import json
    import subprocess

    import agentc
    from agentc.distributed.local_cluster import free_port

    work = Path(tempfile.mkdtemp(prefix="agentc-validate-real-"))
    build = work / "build"
    agentc.compile("examples/rag_agent.py", str(build), devices=["cpu"], quiet=True)
    cli = str(Path(sys.executable).with_name("agentc"))
    res = {"rate": rate, "duration_s": duration_s}
    common = ["--staged", "--scaling", "static", "--start-s", "1"]
    for mode, extra in (("real", []), ("emulate", ["--emulate", "--measured-service"])):
        port = free_port()
        _say(f"validation against real compute: {mode} staged service")
        server = _serve_process(cli, [str(build), *common, *extra], port, work / f"{mode}.log")
        try:
            subprocess.run([cli, "loadtest", f"http://127.0.0.1:{port}", "--arrivals", "gamma", "--rate", f"{rate}",
                            "--cv", "1", "--duration", f"{duration_s}", "--seed", "7", "--out", str(work / mode),
                            "--quiet"], check=True, capture_output=True)
        finally:
            server.terminate()
            server.wait(120)
        r = json.loads((work / mode / "report.json").read_text())
        res[mode] = {k: r.get(k) for k in ("sent", "p50_ms", "p95_ms", "p99_ms", "slo_pct", "send_lag_p99_ms", "valid")}
    for k in ("p50_ms", "p95_ms"):
        e, r = res["emulate"][k], res["real"][k]
        res[f"emulate_over_real_{k}"] = round(e / r, 4) if isinstance(e, float) and isinstance(r, float) and r else None
    _say(f"validation against real compute: {res}")
    return res


def _served_start_s(url: str) -> float | None:
    """The mean replica start a staged service measured (asked for to serving), from its
    /metrics; None if it started none."""
    import urllib.request

    from agentc.serving.stage_metrics import read_stage_metric

    text = urllib.request.urlopen(url + "/metrics", timeout=10).read().decode()
    total = sum(read_stage_metric(text, "agentc_stage_replica_start_seconds_sum").values())
    count = sum(read_stage_metric(text, "agentc_stage_replica_start_seconds_count").values())
    return round(total / count, 3) if count else None
