"""Measure a compiled bench (artifacts.py) on this machine's device and write profiles.

    python -m agentc.bench.run_artifacts DIR --out profile.json [--variant NAME]...
                                             [--budget S] [--reference auto|cuda|cpu|none]
                                             [--runtime-flag=--cuda_use_streams=false ...]

Runs where only numpy and iree.runtime are installed (a GPU machine without the IREE
compiler): it imports nothing from agentc beyond the numpy-only timing and progress
helpers, and PyTorch only for the optional reference timings. One profile per variant:
OUT for the first (`base` when present), OUT's stem + `.<variant>.json` for the others.
Fitting the calibration happens later, anywhere: `agentc bench kernels --fit OUT`.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np

from agentc.bench.progress import Progress
from agentc.bench.timing import Device, Stats, interleaved, random_input, repeat, transfer_times

PROFILE_SCHEMA = "agentc-profile/1"
TRANSFER_SIZES = [1 << 12, 1 << 16, 1 << 20, 1 << 24, 1 << 26]
QUICK_TRANSFER_SIZES = [1 << 12, 1 << 20, 1 << 24]


def _version(dist: str) -> str:
    try:
        return version(dist)
    except PackageNotFoundError:
        return "unknown"


def _cpu_threads() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def compute_units(driver: str, device_name: str = "") -> int | None:
    """How many workgroups the device runs at once, roughly: a CUDA GPU's multiprocessors
    (asked of the driver, device 0 as IREE's default), the CPU threads IREE's task system
    may use, lavapipe's threads (Mesa's `LP_NUM_THREADS`, by default one per CPU; 0 runs
    workgroups on the submitting thread); None where it is not known (other Vulkan
    devices). The cost model may charge kernels whole waves of workgroups over them
    (agentc/cost/profile.py): a one-row GEMV of 3 workgroups on lavapipe's 2 threads takes
    two rounds."""
    if driver == "local-task":
        return _cpu_threads()
    if driver == "vulkan" and device_name.startswith("llvmpipe"):
        threads = os.environ.get("LP_NUM_THREADS", "").strip()
        return max(int(threads), 1) if threads.isdigit() else _cpu_threads()
    if driver != "cuda":
        return None
    import ctypes

    try:
        cuda = ctypes.CDLL("libcuda.so.1")
        device, count = ctypes.c_int(), ctypes.c_int()
        multiprocessor_count = 16  # CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT
        if (cuda.cuInit(0) or cuda.cuDeviceGet(ctypes.byref(device), 0) or
                cuda.cuDeviceGetAttribute(ctypes.byref(count), multiprocessor_count, device)):
            return None
        return count.value
    except OSError:
        return None


def describe_host(device: Device) -> dict:
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), cpu)
    except OSError:
        pass
    return {"hal_device": device.info.get("name", ""), "hal_path": device.info.get("path", ""),
            "cpu": cpu, "platform": platform.platform(), "python": platform.python_version()}


def host_load() -> list[float] | None:
    """The 1, 5 and 15 minute load averages: on a shared machine they say how busy the
    other tenants were while the profile was measured."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:  # not available on this platform
        return None


def _kernel_entry(k: dict, stats: Stats, readback: Stats) -> dict:
    keep = ("name", "op", "op_class", "dtype", "params", "inputs", "flops", "bytes", "dispatches")
    entry = {f: k[f] for f in keep}
    entry.update({f: k[f] for f in ("parallel", "columns", "grid") if f in k})  # absent in older manifests
    entry.update(measured_s=stats.median_s, p10_s=stats.p10_s, p90_s=stats.p90_s, n=stats.n,
                 trimmed_mean_s=stats.trimmed_mean_s,
                 readback_s=readback.median_s,
                 achieved_flops=k["flops"] / stats.median_s,
                 achieved_bytes_per_s=k["bytes"] / stats.median_s)
    return entry


def loaded_call(device: Device, root: Path, k: dict, rng: np.random.Generator):
    """A manifest kernel loaded on `device` with random inputs uploaded once: a call
    without arguments, as the timers take it."""
    call = device.load((root / k["vmfb"]).read_bytes(), k["function"])
    args = [device.upload(random_input(shape, dtype, rng)) for shape, dtype in k["inputs"]]
    return lambda: call(*args)


def measure_variant(root: Path, manifest: dict, variant: str, device: Device, budget_s: float,
                    rounds: int, progress: bool) -> tuple[list[dict], dict]:
    """Kernel entries and overheads for one variant, in manifest order. All kernels stay
    loaded, with their inputs on the device, and are timed round-robin (timing.interleaved)."""
    kernels = manifest["variants"][variant]["kernels"]
    rng = np.random.default_rng(0)
    calls = [loaded_call(device, root, k, rng) for k in kernels]
    bar = Progress(len(kernels) * rounds, f"measure {manifest['target']}:{variant}", progress)
    stats = interleaved(calls, budget_s, rounds, step=lambda i: bar.step(kernels[i]["name"]))
    entries, probes = [], {}
    for k, fn, st in zip(kernels, calls, stats):
        result = fn()
        first = result[0] if isinstance(result, (tuple, list)) else result
        readback = repeat(lambda first=first: device.readback(first), budget_s / 4, min_reps=3,
                          warmup=1)
        if k["role"] == "overhead":
            probes[k["name"]] = {"seconds": st.median_s, "p10_s": st.p10_s, "p90_s": st.p90_s,
                                 "n": st.n, "readback_s": readback.median_s}
        else:
            entries.append(_kernel_entry(k, st, readback))
        del result, first
    calls.clear()
    device.unload_all()
    return entries, overheads(probes)


CHAIN_PROBE = re.compile(r"chain_[a-z0-9]+_(\d+)x\d+")


def overheads(probes: dict[str, dict]) -> dict:
    """Per-call costs from the probes: the call (identity), the first dispatch (a one-element
    add), each further dispatch (the slope through the matmul chains of 2 or more
    dispatches, at least 0) and what the chain of 1 costs above the shortest of those less
    its further dispatches (`single_dispatch_s`: large on the H200, where a call whose
    result is one dispatch's output frees it synchronously, docs/gpu-h200.md). `--fit`
    recomputes this from stored probes, so older profiles get it too."""
    call = probes.get("identity", {}).get("seconds")
    tiny = probes.get("add_f32_1", {}).get("seconds")
    chains = sorted((int(m.group(1)), p["seconds"]) for name, p in probes.items()
                    if (m := CHAIN_PROBE.fullmatch(name)))
    extra = single = None
    longer = [(n, t) for n, t in chains if n >= 2]
    if len(longer) >= 2:
        slope = np.polyfit([n for n, _ in longer], [t for _, t in longer], 1)[0]
        extra = max(float(slope), 0.0)
        one = dict(chains).get(1)
        if one is not None:
            n0, t0 = longer[0]
            single = max(one - (t0 - (n0 - 1) * extra), 0.0)
    return {"call_s": call, "dispatch_s": max(tiny - call, 0.0) if call and tiny else None,
            "dispatch_extra_s": extra, "single_dispatch_s": single,
            "readback_s": probes.get("add_f32_1", {}).get("readback_s"), "probes": probes}


def _references(kernels: list[dict], where: str, budget_s: float, progress: bool) -> list[dict]:
    try:
        from agentc.bench.torch_reference import time_reference
    except ImportError as e:
        print(f"reference: skipped (PyTorch not importable: {e})", file=sys.stderr)
        return []
    return time_reference(kernels, where, budget_s, progress)


def _reference_device(choice: str) -> str | None:
    if choice == "none":
        return None
    if choice == "cpu":
        return "cpu"
    try:
        import torch
    except ImportError:
        return None
    if torch.cuda.is_available():
        return "cuda"
    if choice == "cuda":
        raise SystemExit("run_artifacts: error: --reference cuda: torch.cuda is not available")
    return None


def run(root, variants: list[str] | None = None, budget_s: float = 1.0, rounds: int = 8,
        reference: str = "auto", quick: bool = False, progress: bool = True,
        runtime_flags: list[str] | None = None) -> dict[str, dict]:
    """Measured profiles (no calibration yet), by variant. `runtime_flags` are IREE runtime
    flags (e.g. --cuda_async_allocations=false), set before the driver is created: they
    hold for the whole process, so measure one flag set per process."""
    if runtime_flags:
        import iree.runtime as rt

        rt.flags.parse_flags(*runtime_flags)
    root = Path(root)
    manifest = json.loads((root / "manifest.json").read_text())
    names = variants or sorted(manifest["variants"], key=lambda v: (v != "base", v))
    unknown = [v for v in names if v not in manifest["variants"]]
    if unknown:
        raise SystemExit(f"run_artifacts: error: --variant {unknown[0]}: not in {root}/manifest.json "
                         f"(has: {', '.join(manifest['variants'])})")
    device = Device(manifest["driver"], manifest["staged_readback"])
    extra = []
    try:
        extra = [Device(manifest["driver"], manifest["staged_readback"], 1)]
    except RuntimeError:
        pass
    profiles = {}
    load_before = host_load()
    try:
        sizes = QUICK_TRANSFER_SIZES if quick else TRANSFER_SIZES
        transfers = transfer_times([device, *extra], sizes, budget_s / 2)
        for variant in names:
            kernels, overheads = measure_variant(root, manifest, variant, device, budget_s,
                                                 rounds, progress)
            profiles[variant] = _profile(manifest, variant, device, kernels, overheads, transfers,
                                         budget_s, rounds)
            profiles[variant]["runtime_flags"] = list(runtime_flags or [])
        host = describe_host(device)
        host["compute_units"] = compute_units(manifest["driver"], host["hal_device"])
    finally:
        for d in (device, *extra):
            d.close()
    where = _reference_device(reference)
    if where is not None and profiles:
        first = profiles[names[0]]
        first["reference"] = _references(first["kernels"], where, budget_s, progress)
    for p in profiles.values():
        p["device"].update(host)
        if p["device"]["name"] == "default":  # local-task names no device: the CPU is it
            p["device"]["name"] = host["cpu"]
        p["timing"]["host_load_before_after"] = [load_before, host_load()]
    return profiles


def _profile(manifest, variant, device, kernels, overheads, transfers, budget_s, rounds) -> dict:
    return {
        "schema": PROFILE_SCHEMA,
        "target": manifest["target"], "driver": manifest["driver"],
        "iree_target": manifest["iree_target"], "variant": variant,
        "flags": manifest["variants"][variant]["flags"],
        "spec": manifest["spec"],
        "device": {"name": device.info.get("name", manifest["target"])},  # the host facts join later
        "iree_version": {"compiler": manifest.get("iree_compiler_version", "unknown"),
                         "runtime": _version("iree-base-runtime")},
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "timing": {"statistic": "median of per-call wall times after warmup",
                   "budget_s_per_kernel": budget_s, "rounds": rounds,
                   "method": "inputs resident on the device; kernels timed round-robin; "
                             "synchronous call (result fence awaited); readback timed apart"},
        "kernels": kernels, "transfers": transfers, "overheads": overheads,
    }


def write_profiles(profiles: dict[str, dict], out: Path) -> list[Path]:
    paths = []
    for i, (variant, profile) in enumerate(profiles.items()):
        path = out if i == 0 else out.with_name(f"{out.stem}.{variant}{out.suffix}")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(profile, indent=1))
        paths.append(path)
    return paths


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m agentc.bench.run_artifacts",
                                description=__doc__.splitlines()[0])
    p.add_argument("artifacts", help="directory written by `agentc bench kernels --compile-only`")
    p.add_argument("--out", default="profile.json", help="profile to write (default profile.json)")
    p.add_argument("--variant", action="append", help="measure only these variants")
    p.add_argument("--budget", type=float, default=1.0,
                   help="seconds of calls per kernel (default 1)")
    p.add_argument("--rounds", type=int, default=8,
                   help="round-robin passes over the kernels (default 8)")
    p.add_argument("--reference", choices=("auto", "cuda", "cpu", "none"), default="auto",
                   help="also time the shapes with PyTorch (auto: on cuda when available)")
    p.add_argument("--quick", action="store_true", help="fewer transfer sizes")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--runtime-flag", action="append", default=[], metavar="FLAG",
                   help="IREE runtime flag, e.g. --runtime-flag=--cuda_use_streams=false "
                        "(repeatable)")
    return p


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    if not (Path(args.artifacts) / "manifest.json").is_file():
        print(f"run_artifacts: error: {args.artifacts}: no manifest.json (not an artifacts "
              "directory)", file=sys.stderr)
        return 2
    profiles = run(args.artifacts, args.variant, args.budget, args.rounds, args.reference,
                   args.quick, not args.quiet, args.runtime_flag)
    for path in write_profiles(profiles, Path(args.out)):
        print(f"profile: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
