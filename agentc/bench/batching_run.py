"""Measure `agentc bench batching` where the device is: here, or on a GPU machine that has
only numpy and iree.runtime (the artifacts of `agentc bench batching --target cuda
--artifacts DIR`, compiled elsewhere).

    python -m agentc.bench.batching_run DIR --out OUT [--budget S] [--starts N]
    python -m agentc.bench.batching_run --plot OUT/summary.json   (where matplotlib is)

Writes OUT/summary.json in the named benchmarks' schema (agentc/bench/named.py) and prints
its key=value lines. Weights and activations are random (seeded): timing does not depend
on their values, and the artifacts stay small enough to carry. `--starts N` also measures a
GPU replica of the LLM stage starting, N times: a fresh process that creates the device,
loads the decode module, reads the model's weights from files (memory-mapped, as a replica
reads its archive) and uploads them, and runs one step; from spawn to that step's result.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

MANIFEST = "manifest.json"


def measure(dev, entries: list, budget_s: float, say=print) -> tuple[list, list]:
    """Load each (name, batch, vmfb, function, args) on `dev` and time them interleaved.
    An argument array shared by several entries (a model's weights) is uploaded once."""
    from agentc.bench.timing import interleaved

    uploads: dict[int, object] = {}
    calls, labels = [], []
    for name, batch, vmfb, fn, argv in entries:
        invoke = dev.load(vmfb, fn)
        up = [uploads.setdefault(id(a), dev.upload(a)) for a in argv]
        calls.append(lambda invoke=invoke, up=up: invoke(*up))
        labels.append((name, batch))
    say(f"timing {len(calls)} kernels interleaved")
    stats = interleaved(calls, budget_s=budget_s, rounds=5)
    del calls, uploads
    return labels, stats


def tabulate(labels: list, stats: list, say=print) -> tuple[dict, dict]:
    """Per kernel and batch: median, per-request time and speedup over B = 1; the summary's
    speedups at the two largest batches measured."""
    results: dict[str, dict] = {}
    for (name, b), st in zip(labels, stats):
        results.setdefault(name, {})[b] = {"median_ms": round(st.median_s * 1e3, 4),
                                           "per_request_ms": round(st.median_s * 1e3 / b, 4)}
    summary = {}
    for name, rows in results.items():
        for b, row in rows.items():
            row["speedup"] = round(b * rows[1]["median_ms"] / row["median_ms"], 3)
        for b in sorted(rows)[-2:]:
            summary[f"{name}_speedup_b{b}"] = rows[b]["speedup"]
        say(f"{name}: " + ", ".join(f"B={b} {r['median_ms']:.3f} ms (x{r['speedup']:.2f})" for b, r in rows.items()))
    return results, summary


def _inputs(spec: list[dict], weights: dict, rng) -> list[np.ndarray]:
    """Arrays for a manifest entry's inputs: integers as recorded, weights shared by name,
    other floats random."""
    out = []
    for s in spec:
        if "values" in s:
            out.append(np.asarray(s["values"], dtype=s["dtype"]).reshape(s["shape"]))
        elif "weight" in s:
            if s["weight"] not in weights:
                weights[s["weight"]] = (rng.standard_normal(s["shape"]) * 0.02).astype(s["dtype"])
            out.append(weights[s["weight"]])
        else:
            out.append(rng.standard_normal(s["shape"]).astype(s["dtype"]))
    return out


def _device_name(driver: str) -> str:
    if driver == "cuda":
        try:
            return subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True,
                                  check=False, text=True, timeout=30).stdout.strip().splitlines()[0]
        except (OSError, IndexError, subprocess.SubprocessError):
            pass
    return driver


def replica_start(art: Path, entry: dict, starts: int, say=print) -> list[float]:
    """Seconds from spawning a replica process to its first decode step's result."""
    rng = np.random.default_rng(0)
    wdir = Path("/tmp/agentc-replica-weights")
    wdir.mkdir(exist_ok=True)
    for i, s in enumerate(entry["inputs"]):
        if "weight" in s and not (wdir / f"{i}.npy").exists():
            np.save(wdir / f"{i}.npy", (rng.standard_normal(s["shape"]) * 0.02).astype(s["dtype"]))
    out = []
    for k in range(starts):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "agentc.bench.batching_run", str(art), "--replica", entry["file"],
                        "--weights", str(wdir)], check=True)
        out.append(round(time.perf_counter() - t0, 3))
        say(f"replica start {k + 1}/{starts}: {out[-1]:.2f} s")
    return out


def _replica(art: Path, file: str, wdir: Path) -> None:
    from agentc.bench.timing import Device

    manifest = json.loads((art / MANIFEST).read_text())
    entry = next(e for e in manifest["kernels"] if e["file"] == file)
    dev = Device(manifest["driver"], manifest["staged_readback"])
    try:
        invoke = dev.load((art / file).read_bytes(), entry["function"])
        rng = np.random.default_rng(0)
        args = [np.load(wdir / f"{i}.npy", mmap_mode="r") if "weight" in s else _inputs([s], {}, rng)[0]
                for i, s in enumerate(entry["inputs"])]
        out = invoke(*[dev.upload(np.ascontiguousarray(a)) for a in args])
        dev.readback(out[0])
        del out
    finally:
        dev.close()


def plot(results: dict, path: Path, device: str = "this CPU") -> None:
    """Requests/s per replica against B = 1, per operator, on log-log axes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for name, rows in results.items():
        if not isinstance(rows, dict):  # (a GPU run's replica starts)
            continue
        bs = sorted(rows, key=int)
        ax.plot([int(b) for b in bs], [rows[b]["speedup"] for b in bs], "o-", label=name)
    top = max(int(b) for rows in results.values() if isinstance(rows, dict) for b in rows)
    ax.plot([1, top], [1, top], ":", color="grey", label="ideal")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log", base=2)
    ax.set_xlabel("requests batched (B)")
    ax.set_ylabel("requests/s per replica vs B = 1")
    ax.set_title(f"batching on {device} (IREE)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m agentc.bench.batching_run")
    p.add_argument("artifacts", nargs="?")
    p.add_argument("--plot", metavar="SUMMARY", help="draw SUMMARY's batching.png beside it, and stop")
    p.add_argument("--out", default="batching-out")
    p.add_argument("--budget", type=float, default=2.0, help="seconds of calls per kernel")
    p.add_argument("--starts", type=int, default=0, help="also time this many LLM replica starts")
    p.add_argument("--replica", help=argparse.SUPPRESS)
    p.add_argument("--weights", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.plot:
        record = json.loads(Path(args.plot).read_text())
        plot(record["results"], Path(args.plot).with_name("batching.png"), record["params"]["device"])
        return 0
    if not args.artifacts:
        p.error("give the artifacts directory (or --plot SUMMARY)")
    art = Path(args.artifacts)
    if args.replica:
        _replica(art, args.replica, Path(args.weights))
        return 0
    from agentc.bench.record import Recording
    from agentc.bench.timing import Device

    def say(msg):
        print(f"[bench batching] {msg}", file=sys.stderr, flush=True)

    manifest = json.loads((art / MANIFEST).read_text())
    with Recording("batching", Path(args.out)) as rec:
        rng, weights = np.random.default_rng(0), {}
        entries = [(e["name"], e["batch"], (art / e["file"]).read_bytes(), e["function"],
                    _inputs(e["inputs"], weights, rng)) for e in manifest["kernels"]]
        dev = Device(manifest["driver"], manifest["staged_readback"])
        try:
            labels, stats = measure(dev, entries, args.budget, say)
        finally:
            dev.close()
        results, summary = tabulate(labels, stats, say)
        if args.starts:
            first = next(e for e in manifest["kernels"] if e["name"] == "llm_decode_step" and e["batch"] == 1)
            results["replica_start_s"] = replica_start(art, first, args.starts, say)
            summary["llm_replica_start_s"] = float(np.median(results["replica_start_s"]))
        rec.params = {k: manifest[k] for k in ("batches", "index", "seq", "llm", "target", "flags")} | {
            "device": _device_name(manifest["driver"])}
        rec.results, rec.summary = results, summary
    return 0


if __name__ == "__main__":
    sys.exit(main())
