"""`agentc bench`: measure kernels on a device and calibrate the cost model.

    agentc bench kernels --target cpu|vulkan|cuda [--quick] [--out P.json] [--plot P.png]
                 [--iree-flag=FLAG ...] [--variant NAME] [--artifacts DIR]
    agentc bench kernels --target cuda --compile-only --artifacts DIR [--iree-flag=FLAG ...]
    agentc bench kernels --fit PROFILE.json [RERUN.json ...] [--out P.json] [--plot P.png]
    agentc bench session-soak | verify-load | place-scale | ray | serve | serve-frontier | batching | import | index | decode | e2e
                                                                                          (named.py)

The first form compiles the sweep (artifacts.py), measures it here (run_artifacts.py),
fits the calibration (agentc/cost/profile.py) and prints the predicted-vs-measured table,
whose last line is `mape_pct=X.X` (held-out kernels). The split form compiles here and
measures elsewhere: `python -m agentc.bench.run_artifacts DIR --out P.json` on the device
machine, then `--fit P.json` here. The main CLI (`agentc bench`) calls `register(subparsers)`.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from agentc.bench.errors import BenchError

PROG = "agentc bench"
TARGETS = ("cpu", "vulkan", "cuda")
NAMED = ("kernels", "session-soak", "verify-load", "place-scale", "ray", "serve", "serve-frontier", "batching", "import",
         "index",
         "decode", "e2e")


def register(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("bench", help="measure kernels on a device; calibrate the cost model",
                              description="Measure a sweep of kernels with IREE on one device, "
                                          "fit the roofline per op class, report its error.")
    p.add_argument("name", nargs="?", choices=NAMED,
                   help="a named benchmark (docs/results/<name>/): " + ", ".join(NAMED))
    what = p.add_mutually_exclusive_group()
    what.add_argument("--target", choices=TARGETS, help="device to compile for (and measure)")
    what.add_argument("--fit", metavar="PROFILE.json", nargs="+",
                      help="fit a profile measured elsewhere; several runs of one sweep are "
                           "fitted as one, each kernel at its median over the runs")
    p.add_argument("--out", metavar="P.json",
                   help="profile to write (default build/results/profile-<target>.json; "
                        "with --fit: only when given)")
    p.add_argument("--compare", metavar="OTHER.json",
                   help="with --fit: kernel-by-kernel time ratio of another profile (a flag "
                        "variant, or a rerun to see the noise floor)")
    p.add_argument("--quick", action="store_true", help="small sweep (< 3 min on a laptop); import: tiny shapes")
    p.add_argument("--plot", metavar="P.png", help="write a roofline plot")
    p.add_argument("--compile-only", action="store_true",
                   help="compile into --artifacts DIR and stop (measure with run_artifacts)")
    p.add_argument("--artifacts", metavar="DIR", help="where compiled kernels go (default: temp)")
    p.add_argument("--iree-flag", action="append", default=[], metavar="FLAG",
                   help="extra iree-compile flag (repeatable); a named variant in the artifacts")
    p.add_argument("--kernels", metavar="OPS",
                   help="only these ops, comma-separated (gemm,gemm_tb,gemv,similarity,attention,"
                        "softmax,layernorm,add,mul,sum_rows,sample,topk,vecmat_chain)")
    p.add_argument("--variant", help="name for this flag set (default: derived from the flags)")
    p.add_argument("--budget", type=float, help="seconds of calls per kernel (default 1; "
                                                "0.15 with --quick)")
    p.add_argument("--rounds", type=int, help="round-robin passes over the kernels "
                                               "(default 8; 3 with --quick)")
    p.add_argument("--jobs", type=int, default=2, help="parallel compiles (default 2)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--requests", type=int, help="session-soak: requests per agent (default 100000); "
                                                 "ray: paired requests per agent (default 30)")
    p.add_argument("--emulate", action="store_true",
                   help="serve: also replay a 5-minute window against the emulated staged service on Ray Serve "
                        "and validate the simulator against it (~7 min)")
    p.add_argument("--real", action="store_true", help="ray: also the real RAG (MiniLM + SmolLM2), and its recovery")
    p.add_argument("--clients", type=int, default=4, help="session-soak: concurrent clients (default 4)")
    p.add_argument("--agents", help="session-soak: which agents, comma-separated (default rag,fanout)")
    p.add_argument("--runs", type=int, default=5, help="verify-load: fresh processes per mode; decode: requests "
                                                       "per system (default 5)")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from agentc.bench.artifacts import ArtifactsError
    from agentc.build.iree_compile import IreeCompileError
    from agentc.cost.profile import ProfileError

    try:
        return _run(args)
    except (ArtifactsError, BenchError, ProfileError, IreeCompileError, OSError) as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2


def _run(args) -> int:
    from agentc.bench.report import calibrate

    remote = {"batching": ("agentc.bench.batching", "agentc.bench.batching_run"),
              "index": ("agentc.bench.index_search", "agentc.bench.index_run")}
    if args.name in remote and args.target and args.target != "cpu":
        import importlib

        compiler, runner = remote[args.name]
        if not args.artifacts:
            raise BenchError(f"{args.name} --target {args.target}: give --artifacts DIR, measured there with "
                             f"python -m {runner} DIR --out OUT")
        importlib.import_module(compiler).compile_artifacts(args.target, Path(args.artifacts), bool(args.quick))
        return 0
    if args.name and args.name != "kernels":
        if args.target or args.fit:
            raise BenchError(f"{args.name}: --target and --fit belong to `agentc bench kernels`")
        for flag in ("requests", "runs", "clients"):
            v = getattr(args, flag)
            if v is not None and v < 1:
                raise BenchError(f"--{flag} must be >= 1, got {v}")
        from agentc.bench.named import run_named

        return run_named(args.name, args)
    if not (args.target or args.fit):
        raise BenchError("kernels: give --target DEVICE (measure here) or --fit PROFILE.json")
    if args.fit:
        for flag in ("compile_only", "quick", "artifacts", "kernels"):
            if getattr(args, flag):
                raise BenchError(f"--{flag.replace('_', '-')} does not apply to --fit")
        from agentc.bench.artifacts import refresh
        from agentc.cost.profile_json import read_json, validate_measurements

        runs = [(path, read_json(path)) for path in args.fit]
        for path, run in runs:
            validate_measurements(run, path)
        if len(runs) > 1:
            from agentc.bench.merge import merge_runs

            measured, source = merge_runs(runs), " + ".join(args.fit)
        else:
            (source, measured), = runs
        changed = refresh(measured, progress=not args.quiet)
        if changed:
            _log(args, f"{changed} kernels re-analysed under the current cost model")
        profile = calibrate(measured, source)
        if args.compare:
            from agentc.bench.report import comparison

            other = read_json(args.compare)
            validate_measurements(other, args.compare)
            print("\n".join(comparison(profile, other, args.compare)))
        return _finish(profile, args.out, args.plot)
    if args.compare:
        raise BenchError("--compare applies only to --fit")
    if args.compile_only and not args.artifacts:
        raise BenchError("--compile-only needs --artifacts DIR")
    profile = _bench_here(args)
    if profile is None:
        return 0
    out = args.out or f"build/results/profile-{args.target}.json"
    return _finish(calibrate(profile, out), out, args.plot)


def _bench_here(args) -> dict | None:
    from agentc.bench import artifacts
    from agentc.bench.sweep import BUILDERS, sweep
    from agentc.devices import KINDS

    kind = KINDS[args.target]
    if not args.compile_only and not kind.available():
        raise BenchError(f"--target {args.target}: no usable '{kind.driver}' device here "
                         "(compile with --compile-only --artifacts DIR and measure elsewhere)")
    t0 = time.perf_counter()
    ops = [o.strip() for o in args.kernels.split(",") if o.strip()] if args.kernels else None
    unknown = sorted(set(ops or []) - set(BUILDERS))
    if unknown:
        raise BenchError(f"--kernels: unknown op '{unknown[0]}' (known: {', '.join(BUILDERS)})")
    cases = sweep(args.target, args.quick, ops)
    tmp = None if args.artifacts else tempfile.TemporaryDirectory(prefix="agentc-bench-")
    root = Path(args.artifacts or tmp.name)
    try:
        manifest = artifacts.build(cases, args.target, root, args.iree_flag, args.variant,
                                   progress=not args.quiet, jobs=args.jobs)
        variant = args.variant or artifacts.variant_name(args.iree_flag)
        _log(args, f"compiled {len(cases)} kernels ({variant}) in {time.perf_counter() - t0:.1f}s")
        if args.compile_only:
            size = sum(f.stat().st_size for f in root.rglob("*") if f.is_file())
            print(f"artifacts: {root} ({size / 2**20:.1f} MiB, variants: "
                  f"{', '.join(manifest['variants'])})")
            return None
        budget = args.budget if args.budget is not None else (0.15 if args.quick else 1.0)
        out = root / f"measured-{variant}.json"
        cmd = [sys.executable, "-m", "agentc.bench.run_artifacts", str(root), "--out", str(out),
               "--variant", variant, "--budget", str(budget), "--reference", "none",
               "--rounds", str(args.rounds or (3 if args.quick else 8))]
        cmd += ["--quick"] * args.quick + ["--quiet"] * args.quiet
        # A fresh process: torch (imported here by the exports) leaves OpenMP threads spinning
        # that slow small kernels down by tens of microseconds on a 2-core machine.
        done = subprocess.run(cmd, stdout=subprocess.DEVNULL, check=False)
        if done.returncode != 0:
            raise BenchError(f"measuring failed (exit {done.returncode}): {' '.join(cmd)}")
        _log(args, f"measured in {time.perf_counter() - t0:.1f}s total")
        return json.loads(out.read_text())
    finally:
        if tmp is not None:
            tmp.cleanup()


def _finish(profile: dict, out, plot) -> int:
    from agentc.bench.plot import roofline_png
    from agentc.bench.report import table

    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(json.dumps(profile, indent=1))
        print(f"profile: {out}", file=sys.stderr)
    if plot:
        note = roofline_png(profile, plot)
        print(note or f"plot: {plot}", file=sys.stderr)
    print("\n".join(table(profile)))
    return 0


def _log(args, msg: str) -> None:
    if not args.quiet:
        print(f"[bench] {msg}", file=sys.stderr, flush=True)
