"""IREE against the roofline and against PyTorch, shape by shape, from one profile measured
by `agentc bench` (split mode) on a GPU, as a Markdown table.

    python experiments/rag-pipeline/gpu_report.py PROFILE.json --hardware nvidia-h200-sxm [--variant NAME=OTHER.json ...]

Both frameworks were timed in the same run on the same GPU (`run_artifacts` times the
PyTorch reference right after IREE's kernels). Roofline time = max(FLOPs / dense peak of
the dtype, bytes / memory bandwidth), from agentc/cost/hardware.yaml. Variants add a
column: that flag set's time over the base time for the same kernel.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("profile")
    ap.add_argument("--hardware", required=True, help="id in agentc/cost/hardware.yaml")
    ap.add_argument("--variant", action="append", default=[], metavar="NAME=PROFILE.json")
    args = ap.parse_args(argv)

    from agentc.cost.hardware import load_hardware

    hw = load_hardware()[args.hardware]
    base = json.loads(Path(args.profile).read_text())
    variants = {}
    for item in args.variant:
        name, path = item.split("=", 1)
        variants[name] = {k["name"]: k["measured_s"] for k in json.loads(Path(path).read_text())["kernels"]}
    torch = {(r["name"], r["dtype"]): r["measured_s"] for r in base.get("reference", [])}
    dtype_peak = {"f16": hw.peak("fp16"), "f32": hw.peak("fp32")}
    head = ["kernel", "IREE µs", "IREE TFLOP/s", "IREE GB/s", "roofline µs", "of roofline",
            "PyTorch µs", "IREE / PyTorch"] + [f"{v} / base" for v in variants]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    ratios = []
    for k in base["kernels"]:
        ref = torch.get((k["name"], k["dtype"]))
        if ref is None:
            continue
        t = k["measured_s"]
        roof = max(k["flops"] / dtype_peak.get(k["dtype"], hw.peak("fp32")), k["bytes"] / hw.memory_bandwidth)
        ratios.append(t / ref)
        row = [k["name"], f"{t * 1e6:,.1f}", f"{k['flops'] / t / 1e12:.2f}", f"{k['bytes'] / t / 1e9:.1f}",
               f"{roof * 1e6:,.2f}", f"{roof / t:.1%}", f"{ref * 1e6:,.1f}", f"{t / ref:.1f}x"]
        row += [f"{variants[v][k['name']] / t:.3f}" if k["name"] in variants[v] else "-" for v in variants]
        print("| " + " | ".join(row) + " |")
    gm = math.exp(sum(math.log(r) for r in ratios) / len(ratios))
    o = base["overheads"]
    print(f"\n{len(ratios)} kernels with a PyTorch reference; geometric mean IREE / PyTorch = {gm:.1f}x.")
    print(f"IREE call overheads on {base['device']['name']}: empty function {o['call_s'] * 1e6:.1f} µs, "
          f"a call with one dispatch {o['dispatch_s'] * 1e6:.1f} µs, each further dispatch "
          f"{o['dispatch_extra_s'] * 1e6:.1f} µs.")
    for name, times in variants.items():
        common = [k for k in base["kernels"] if k["name"] in times]
        g = math.exp(sum(math.log(times[k["name"]] / k["measured_s"]) for k in common) / len(common))
        print(f"variant {name}: geometric mean time {g:.3f}x the base over {len(common)} kernels.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
