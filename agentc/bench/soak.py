"""`agentc bench session-soak`: does a long-lived session stay bounded?

One session per agent (the tiny RAG of examples/rag_agent.py and the fan-out panel of
examples/fanout_agent.py) serves N requests (default 100,000) from a few concurrent
clients, with the trace ring at its default size. Each agent is the example's, with one
tool call added whose tool overruns its 50 ms timeout on 1% of requests and never returns
on one: the faults that used to leak a thread per request. RSS and thread count (Python's
and the process's, IREE's included) are sampled every 1,000 requests; the result is their
growth from the sample after the first 1,000 requests to the end (goal: RSS within 10 MB,
threads constant). Each session runs in a fresh process (`python -m agentc.bench.soak`),
so that the compiler's imports are not in its RSS.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

AGENTS = {"rag": ("examples/rag_agent.py", "rag"), "fanout": ("examples/fanout_agent.py", "panel")}
TIMEOUT_MS = 50
SAMPLE_EVERY = 1000

# Appended to the example's source: an agent that runs the example's and one tool call.
SOAK_AGENT = '''

# -- added by agentc bench session-soak -------------------------------------------------
import time as _time


def lookup(query: str) -> str:
    """Overruns its timeout on 1% of requests, never returns on the one marked #hang."""
    n = int(query.rsplit("#", 1)[1]) if "#" in query and query.rsplit("#", 1)[1].isdigit() else 0
    if query.endswith("#hang"):
        _time.sleep(10**9)
    if n % 100 == 37:
        _time.sleep({sleep_s})
    return f"record {{n}}"


@agentc.agent(name="soak")
def _soak(query):
    reply = {agent}.fn(query)
    return agentc.format("{{0}}\\n{{1}}", reply, agentc.tool(lookup, query, timeout_ms={timeout_ms}))
'''


def soak_graph(example: Path, agent: str, out_dir: Path) -> Path:
    """The example's source with the soak agent appended, beside the files it reads."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for f in example.parent.glob("*.txt"):
        (out_dir / f.name).write_bytes(f.read_bytes())
    graph = out_dir / f"soak_{example.name}"
    graph.write_text(example.read_text() + SOAK_AGENT.format(agent=agent, sleep_s=4 * TIMEOUT_MS / 1e3,
                                                             timeout_ms=TIMEOUT_MS))
    return graph


def run(args, out: Path):
    """agentc bench session-soak: compile each soak agent, soak it in a fresh process."""
    import tempfile

    import agentc
    from agentc.bench.errors import BenchError

    requests = args.requests or 100_000
    agents = [a.strip() for a in (args.agents or ",".join(AGENTS)).split(",")]
    params = {"requests": requests, "clients": args.clients, "agents": agents, "tool_timeout_ms": TIMEOUT_MS,
              "timeouts": "1% of requests", "hung_tools": 1, "trace_events": "default"}
    results = {}
    with tempfile.TemporaryDirectory(prefix="agentc-soak-") as tmp:
        for name in agents:
            if name not in AGENTS:
                raise BenchError(f"--agents: unknown agent '{name}' (known: {', '.join(AGENTS)})")
            example, fn = AGENTS[name]
            graph = soak_graph(Path(example), fn, Path(tmp) / name)
            build = Path(tmp) / f"{name}.build"
            agentc.compile(str(graph), str(build), devices=["cpu"], agent="soak", quiet=True)
            cmd = [sys.executable, "-m", "agentc.bench.soak", str(build), str(requests), str(args.clients)]
            print(f"[bench] soak {name}: {requests} requests, {args.clients} clients", file=sys.stderr, flush=True)
            samples = []
            with subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True) as p:
                for line in p.stdout:
                    s = json.loads(line)
                    samples.append(s)
                    print(f"[bench] {name}: {s['requests']:>7} requests  rss {s['rss_mb']:.1f} MB  "
                          f"threads {s['threads']} ({s['os_threads']} os)  errors {s['errors']}  "
                          f"stuck {s['tools_stuck']}  {s['seconds']:.0f}s", file=sys.stderr, flush=True)
            if p.returncode != 0 or not samples:
                raise RuntimeError(f"soak of {name} failed (exit {p.returncode})")
            closed = samples.pop() if samples[-1].get("after_close") else None
            first = next(s for s in samples if s["requests"] >= SAMPLE_EVERY)
            last = samples[-1]
            results[name] = {"samples": samples, "after_1000": first, "end": last, "after_close": closed,
                             "rss_growth_mb": round(last["rss_mb"] - first["rss_mb"], 2),
                             "thread_growth": last["os_threads"] - first["os_threads"],
                             "close_s": closed and closed["close_s"]}
    _plot(results, out / "soak.png")
    summary = {}
    for name, r in results.items():
        summary[f"{name}_rss_growth_mb"] = r["rss_growth_mb"]
        summary[f"{name}_thread_growth"] = r["thread_growth"]
        summary[f"{name}_requests_per_s"] = round(r["end"]["requests"] / r["end"]["seconds"], 1)
    return params, results, summary


def _plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.6))
    for name, r in results.items():
        xs = [s["requests"] for s in r["samples"]]
        ax1.plot(xs, [s["rss_mb"] for s in r["samples"]], label=name)
        ax2.plot(xs, [s["os_threads"] for s in r["samples"]], label=name)
    ax1.set(xlabel="requests", ylabel="RSS (MB)", title="RSS of a long-lived session")
    ax2.set(xlabel="requests", ylabel="threads (OS)", title="threads")
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# -- the soaked process --------------------------------------------------------------------
def _proc_status() -> tuple[float, int]:
    fields = dict(ln.split(":", 1) for ln in Path("/proc/self/status").read_text().splitlines() if ":" in ln)
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["Threads"])


def soak(build: str, requests: int, clients: int) -> None:
    import agentc
    from agentc.runtime.host_ops import RunError

    s = agentc.load(build)
    lock = threading.Lock()
    state = {"done": 0, "errors": 0, "timeouts": 0}
    t0 = time.perf_counter()

    def sample() -> None:
        rss, os_threads = _proc_status()
        st = s.stats()
        print(json.dumps({"requests": state["done"], "seconds": round(time.perf_counter() - t0, 1),
                          "rss_mb": round(rss, 2), "os_threads": os_threads, "threads": threading.active_count(),
                          "errors": state["errors"], "timeouts": state["timeouts"],
                          "tools_stuck": len(st["tools_stuck"]), "tool_threads": st["tool_threads"],
                          "trace_events": st["trace_events"], "trace_dropped": st["trace_dropped"]}), flush=True)

    def one(i: int) -> None:
        query = f"What is {i % 50} + {i % 7}? #" + ("hang" if i == 500 else str(i))
        try:
            s.run({"query": query})
        except RunError as e:
            with lock:
                state["errors"] += 1
                state["timeouts"] += "exceeded its timeout" in str(e)
        with lock:
            state["done"] += 1
            if state["done"] % SAMPLE_EVERY == 0:
                sample()

    with ThreadPoolExecutor(max_workers=clients) as pool:
        for _ in pool.map(one, range(requests)):
            pass
    t1 = time.perf_counter()
    stuck = s.close()
    rss, os_threads = _proc_status()
    print(json.dumps({"requests": state["done"], "seconds": round(t1 - t0, 1), "rss_mb": round(rss, 2),
                      "os_threads": os_threads, "threads": threading.active_count(), "errors": state["errors"],
                      "timeouts": state["timeouts"], "tools_stuck": len(stuck), "tool_threads": 0,
                      "trace_events": 0, "trace_dropped": 0, "close_s": round(time.perf_counter() - t1, 3),
                      "after_close": True}), flush=True)


if __name__ == "__main__":
    soak(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
