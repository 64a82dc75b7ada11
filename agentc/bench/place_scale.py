"""`agentc bench place-scale`: placement time and memory against the size of the cluster.

`agentc place` in a fresh process per point, for the fan-out panel (tiny models) and the
real RAG (MiniLM + SmolLM2-135M), on clusters of half T4s, half H100s, linked by type:
10 devices (the anchor), then 1,000, 10,000 and 100,000 as one entry per type with a
count, and 10,000 as one named entry per device. Each point is wall time and peak RSS of
the whole process; a first placement of each agent converts its models into the cache
beforehand, so that one-time work is not in any point. Goal: 1,000 and 10,000 devices
within 60 s and 2 GB.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

AGENTS = {"fanout": "examples/fanout_agent.py", "rag_real": "examples/rag_agent_real.py"}
LINKS = """links:
  - {between: [nvidia-t4, nvidia-t4], latency_us: 10, bandwidth_gbps: 12}
  - {between: [nvidia-t4, nvidia-h100-sxm], latency_us: 20, bandwidth_gbps: 12}
  - {between: [nvidia-h100-sxm, nvidia-h100-sxm], latency_us: 5, bandwidth_gbps: 400}
"""


def counted_cluster(path: Path, n: int) -> Path:
    """n devices as two entries (T4s and H100s) with counts."""
    path.write_text(f"devices:\n  - {{type: nvidia-t4, count: {n // 2}}}\n"
                    f"  - {{type: nvidia-h100-sxm, count: {n - n // 2}}}\n" + LINKS)
    return path


def named_cluster(path: Path, n: int) -> Path:
    """n devices as n entries, each with its own name."""
    entries = [f"  - {{type: nvidia-t4, name: t4-{i}}}" for i in range(n // 2)]
    entries += [f"  - {{type: nvidia-h100-sxm, name: h100-{i}}}" for i in range(n - n // 2)]
    path.write_text("devices:\n" + "\n".join(entries) + "\n" + LINKS)
    return path


def measure_place(graph, cluster, time_limit_s: float = 5.0) -> dict:
    """`agentc place --json` in a fresh process: exit status, placement, seconds, peak RSS."""
    code = textwrap.dedent(f"""
        import json, time
        from agentc.cli import main
        t0 = time.perf_counter()
        rc = main(["place", {str(graph)!r}, "--cluster", {str(cluster)!r}, "--json",
                   "--time-limit", "{time_limit_s}"])
        # VmHWM: this process image's peak (getrusage's ru_maxrss survives exec and can
        # report the parent's, e.g. a test runner that holds real models)
        hwm = next(ln for ln in open("/proc/self/status") if ln.startswith("VmHWM:"))
        print(json.dumps({{"rc": rc, "s": time.perf_counter() - t0, "rss_mb": int(hwm.split()[1]) / 1024}}))
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600, check=False)
    lines = r.stdout.strip().splitlines()
    if r.returncode != 0 or len(lines) < 2:
        raise RuntimeError(f"agentc place on {cluster} failed: {r.stderr.strip().splitlines()[-1:]}")
    placement, measured = (json.loads(x) for x in lines[-2:])
    return {**measured, "placement": placement}


def run(args, out: Path):
    points = [("counted", 10), ("counted", 1000), ("counted", 10000), ("named", 10000), ("counted", 100000)]
    results = {}
    with tempfile.TemporaryDirectory(prefix="agentc-place-scale-") as tmp:
        for agent, graph in AGENTS.items():
            print(f"[bench] {agent}: first placement (fills the cache)", file=sys.stderr, flush=True)
            measure_place(graph, counted_cluster(Path(tmp) / "warm.yaml", 2))
            rows = []
            for layout, n in points:
                make = counted_cluster if layout == "counted" else named_cluster
                got = measure_place(graph, make(Path(tmp) / f"{layout}{n}.yaml", n))
                p = got["placement"]
                listed = len(p["utilisation"]) - 1  # the host is not a cluster device
                rows.append({"layout": layout, "devices": n, "s": round(got["s"], 2),
                             "rss_mb": round(got["rss_mb"], 1), "listed": listed,
                             "predicted_ms": round(p["predicted_ms"], 3), "status": p["status"]})
                print(f"[bench] {agent}: {n:>6} devices ({layout}): {got['s']:.1f} s, {got['rss_mb']:.0f} MB, "
                      f"{listed} listed, predicted {p['predicted_ms']:.1f} ms", file=sys.stderr, flush=True)
            results[agent] = rows
    summary = {}
    for agent, rows in results.items():
        anchor = rows[0]
        for r in rows[1:]:
            key = f"{agent}_{r['devices']}{'_named' if r['layout'] == 'named' else ''}"
            summary[f"{key}_s"] = r["s"]
            summary[f"{key}_rss_mb"] = r["rss_mb"]
            summary[f"{key}_rss_over_10"] = round(r["rss_mb"] / anchor["rss_mb"], 2)
    print(f"{'agent':<9} {'devices':>8} {'layout':<8} {'s':>6} {'RSS MB':>7} {'listed':>6}")
    for agent, rows in results.items():
        for r in rows:
            print(f"{agent:<9} {r['devices']:>8} {r['layout']:<8} {r['s']:>6.1f} {r['rss_mb']:>7.0f} {r['listed']:>6}")
    return {"points": points, "agents": AGENTS, "time_limit_s": 5.0}, results, summary
