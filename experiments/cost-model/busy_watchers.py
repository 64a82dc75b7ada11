"""What an open Vulkan device's busy-waiting threads cost, with and without their demotion.

IREE's Vulkan completion watchers poll lavapipe's semaphores for as long as the device is
open (agentc/devices/hal_device.py). This opens one in a fresh process per run, alternating runs
that leave the watchers at normal priority ("spinning") with runs that demote them to
SCHED_IDLE as agentc does ("demoted"), and measures in each: the process's CPU use while
the device idles, a CPU-target GEMM before and after the Vulkan device opens, and a GEMV on
the Vulkan device (median, p10, p90).

    python experiments/cost-model/busy_watchers.py [--pairs 2] [--budget 0.5] [--out build/results/busy-watchers.json]

Prints spinning/demoted ratios of the per-mode medians and writes every run to --out.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

CPU_CASE = ("gemm", (("m", 512), ("k", 512), ("n", 512)))
VULKAN_CASE = ("gemv", (("n", 2048), ("k", 2048)))
MODES = ("spinning", "demoted")


def _build(work: Path) -> None:
    """Compiles the two kernels into `work/<target>/` with the bench's own builder."""
    from agentc.bench.artifacts import build
    from agentc.bench.sweep import Case

    for target, (op, params) in (("cpu", CPU_CASE), ("vulkan", VULKAN_CASE)):
        build([Case(op, "f32", params)], target, work / target, progress=False)


def child(mode: str, work: Path, budget_s: float) -> dict:
    import numpy as np

    from agentc.bench.run_artifacts import loaded_call
    from agentc.bench.timing import Device, repeat
    from agentc.devices import KINDS, hal_device

    if mode == "spinning":
        hal_device.demote_spinners = lambda tids: []
    rng = np.random.default_rng(0)

    def opened(target: str) -> Device:
        return Device(KINDS[target].driver, KINDS[target].staged_readback)

    def loaded(device: Device, target: str):
        manifest = json.loads((work / target / "manifest.json").read_text())
        return loaded_call(device, work / target, manifest["variants"]["base"]["kernels"][0], rng)

    cpu = opened("cpu")
    gemm = loaded(cpu, "cpu")
    cpu_alone = repeat(gemm, budget_s)
    vulkan = opened("vulkan")
    t0, c0 = time.perf_counter(), time.process_time()
    time.sleep(budget_s)
    idle_cores = (time.process_time() - c0) / (time.perf_counter() - t0)
    cpu_beside = repeat(gemm, budget_s)
    gemv = repeat(loaded(vulkan, "vulkan"), budget_s)
    vulkan.close()
    cpu.close()
    return {"mode": mode, "idle_cores": idle_cores, "cpu_gemm_alone_s": cpu_alone.median_s,
            "cpu_gemm_beside_vulkan_s": cpu_beside.median_s, "vulkan_gemv_s": gemv.median_s,
            "vulkan_gemv_p10_s": gemv.p10_s, "vulkan_gemv_p90_s": gemv.p90_s}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pairs", type=int, default=2, help="runs per mode, alternating")
    p.add_argument("--budget", type=float, default=0.5, help="seconds of calls per measurement")
    p.add_argument("--out", default="build/results/busy-watchers.json")
    p.add_argument("--child", nargs=2, metavar=("MODE", "DIR"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child[0], Path(args.child[1]), args.budget)))
        return 0

    import tempfile

    from agentc.devices import usable

    if "vulkan" not in usable():
        print("no Vulkan device (install mesa-vulkan-drivers)", file=sys.stderr)
        return 1
    runs = []
    with tempfile.TemporaryDirectory(prefix="busy-watchers-") as work:
        _build(Path(work))
        for _ in range(args.pairs):
            for mode in MODES:
                print(f"[busy-watchers] run {len(runs) + 1}/{2 * args.pairs}: {mode}",
                      file=sys.stderr)
                out = subprocess.run([sys.executable, __file__, "--child", mode, work,
                                      "--budget", str(args.budget)], capture_output=True,
                                     text=True, check=True)
                runs.append(json.loads(out.stdout.strip().splitlines()[-1]))

    fields = [("idle_cores", "CPU cores used while the Vulkan device idles", 1),
              ("cpu_gemm_alone_s", "cpu gemm 512^3, no Vulkan device (ms)", 1e3),
              ("cpu_gemm_beside_vulkan_s", "cpu gemm 512^3, Vulkan device open (ms)", 1e3),
              ("vulkan_gemv_s", "lavapipe gemv 2048x2048 median (ms)", 1e3),
              ("vulkan_gemv_p10_s", "lavapipe gemv 2048x2048 p10 (ms)", 1e3),
              ("vulkan_gemv_p90_s", "lavapipe gemv 2048x2048 p90 (ms)", 1e3)]
    print(f"{'':46s} {'spinning':>10s} {'demoted':>10s} {'ratio':>7s}")
    summary = {}
    for key, label, scale in fields:
        spin, demoted = (statistics.median(r[key] for r in runs if r["mode"] == m) for m in MODES)
        summary[key] = {"spinning": spin, "demoted": demoted}
        ratio = f"{spin / demoted:7.2f}" if demoted > 0 else "      -"
        print(f"{label:46s} {spin * scale:10.3f} {demoted * scale:10.3f} {ratio}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"runs": runs, "median_by_mode": summary}, indent=1))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
