"""Real model architectures on a GPU: agentc (IREE, CUDA) vs PyTorch eager (CUDA), same weights.

The pipeline is examples/rag_agent_real.py (MiniLM-L6 embeds the question, top-3 over 215
passages, SmolLM2-135M answers in 32 greedy tokens). Its real weights (630 MB) cannot be
carried to the GPU host, so both sides run the same architectures with seeded random
weights (`minilm-l6-random`, `smollm2-135m-random`, AGENTC_RANDOM_WEIGHTS=1): the host
re-creates the random checkpoints from the build's copies of their configs (same seed), and
from them the model archives, checked against the build's content hashes.

Here (IREE compiler; CUDA modules for sm_80):
    python experiments/rag-pipeline/gpu_models.py compile --out .device/gpu-models
On the GPU host (iree-base-runtime, torch with CUDA, transformers; no IREE compiler):
    python experiments/rag-pipeline/gpu_models.py run .device/gpu-models --requests 20 --json out.json

`run` loads the build with the agentc runtime on `cuda` and the same two checkpoints in
PyTorch pipelines (`--anchors`, torch_pipelines.py: eager transformers, and torch.compile
pipelines in float32 or bfloat16) on CUDA, with the same tokenizers and chat template (the
build's copies). Each answers the same questions in its own process, in turn. Reported:
median time per request, embedding and prefill time, decode tokens/s, whether passages and
answers agree with agentc's. All stop at end-of-turn or after 32 tokens.
Last lines `speedup_vs_<anchor>=X.XX` (median anchor / median agentc) and
`decode_vs_<anchor>=X.XX` (agentc's decode tokens/s over the anchor's).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "rag_agent_real.py"
sys.path.insert(0, str(Path(__file__).parent))
from rag_e2e import QUESTIONS

ENCODER, LLM = "minilm-l6-random", "smollm2-135m-random"
SETTINGS = "gpu_models.json"  # what `compile` was asked for


# -- here: compile ------------------------------------------------------------------------------
def compile_build(out: Path, max_tokens: int, devices: list[str], granularity: str,
                  iree_flags: list[str], cuda_forms: list[str] = ()) -> None:
    """Compile the example (for cuda) and copy what the GPU host needs (no model archives).
    `iree_flags` are added to every device's IREE compile flags (recorded in the manifest);
    `cuda_forms` (`name=value`) replace the imported models' cuda forms (agentc.models.forms),
    e.g. weight_dtype=float32 for the float32 build beside the default bfloat16 one."""
    os.environ.update(AGENTC_RANDOM_WEIGHTS="1", AGENTC_MAX_TOKENS=str(max_tokens),
                      AGENTC_LLM_GRANULARITY=granularity)
    import dataclasses

    import agentc
    from agentc.devices import KINDS
    from agentc.models.hf.imported import Imported

    for name in devices:
        KINDS[name] = dataclasses.replace(KINDS[name], compile_flags=KINDS[name].compile_flags + tuple(iree_flags))
    Imported.RUNTIME_FORMS = {**Imported.RUNTIME_FORMS,
                              "cuda": {**Imported.RUNTIME_FORMS["cuda"], **dict(f.split("=", 1) for f in cuda_forms)}}

    full = out.with_name(out.name + "-full")
    t0 = time.perf_counter()
    placement = agentc.compile(str(EXAMPLE), str(full), devices=devices, quiet=False)
    print(f"compiled {len(placement.ops)} operators in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    manifest = json.loads((full / "manifest.json").read_text())
    shutil.rmtree(out, ignore_errors=True)
    regenerable = {rel for rel, entry in manifest["weights"].items() if _regenerable(entry)}
    for rel in [*manifest["files"], "manifest.json"]:
        if rel not in regenerable:
            (out / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(full / rel, out / rel)
    # The token budget is compiled into the agent; `run` gives the eager side the same one.
    (out / SETTINGS).write_text(json.dumps({"max_tokens": max_tokens}))
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(f"carry {out}: {size / 2**20:.1f} MiB (model archives are re-created there)", file=sys.stderr)


def _regenerable(entry: dict) -> bool:
    return entry["groups"][0].split("/", 1)[0] in (ENCODER, LLM)


# -- there: re-create weights -------------------------------------------------------------------
def _random_dir(carried: Path, out: Path) -> Path:
    """The random checkpoint agentc.models.hf.random_checkpoint wrote for the build, written
    again from the build's copy of its config (same seed, same initialisation), beside the
    build's copies of its tokenizer files."""
    import warnings

    import torch
    import transformers

    if (out / "config.json").is_file():
        return out
    transformers.utils.logging.disable_progress_bar()
    config = transformers.AutoConfig.from_pretrained(str(carried))
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        getattr(transformers, config.architectures[0])(config).eval().save_pretrained(out)
    for f in carried.rglob("*"):
        if f.is_file() and not (out / f.relative_to(carried)).exists():
            (out / f.relative_to(carried)).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(f, out / f.relative_to(carried))
    return out


def model_dirs(build: Path) -> dict[str, Path]:
    """The random models' directories, re-created under the build (`regenerated/`)."""
    plan = json.loads((build / "plan.json").read_text())
    return {name.partition("@")[0]: _random_dir(build / m["dir"], build / "regenerated" / m["key"].partition("@")[0])
            for name, m in plan["models"].items() if name.partition("@")[0] in (ENCODER, LLM)}


def regenerate(build: Path) -> dict[str, dict]:
    """Write the missing model archives from the re-created checkpoints; each must hash as
    the build says."""
    from agentc.build.weights import content_digest
    from agentc.models import half_weights, registry
    from agentc.models.irpa import write_irpa

    manifest = json.loads((build / "manifest.json").read_text())
    dirs = model_dirs(build)
    report = {}
    for rel, entry in manifest["weights"].items():
        if not _regenerable(entry):
            continue
        t0 = time.perf_counter()
        name = entry["groups"][0].split("/", 1)[0]
        model = registry.carried(name, name, dirs[name])
        # step granularity keeps every layer in one group, `<model>/all`
        groups = {g: model.all_group if g.endswith("/all") else model.groups[g] for g in entry["groups"]}
        halves, stacks = set(entry.get("bf16_copies", ())), set(entry.get("stacked_copies", ()))
        groups = {g: {**ps, **half_weights.copies(ps, g in stacks, "bfloat16" if g in halves else "float32")}
                  for g, ps in groups.items()}
        digest = content_digest(groups)
        if not (build / rel).exists():
            write_irpa(build / rel, groups)
        report[rel] = {"hash_matches": digest == entry["sha256"], "s": time.perf_counter() - t0}
        print(f"{rel}: re-created in {report[rel]['s']:.1f} s, content hash "
              f"{'matches the build' if report[rel]['hash_matches'] else 'DIFFERS from the build'}", file=sys.stderr)
    return report


# -- there: workers -----------------------------------------------------------------------------
def agentc_worker(conn, build: str, runtime_flags: list[str], trace: str | None):
    import iree.runtime as rt

    import agentc
    from agentc.bench.decode import token_ends

    if runtime_flags:
        rt.flags.parse_flags(*runtime_flags)  # before any device exists

    t0 = time.perf_counter()
    session = agentc.load(build)

    def run(q):
        n = session.trace.added
        context, answer = session.run({"query": q})["outputs"]
        ev = session.trace.since(n)
        span = [(s, e) for _, name, _, s, e, _ in ev if name.startswith("embed_query/")]
        prefill = [(s, e) for _, name, _, s, e, _ in ev if name.startswith("answer/prefill")]
        first, last, decoded, _ = token_ends(ev)  # a decode chunk (answer/decode<i>x<m>) gives m tokens
        calls = [e - s for track, name, _, s, e, _ in ev if track != "host"]
        return {"context": context, "answer": answer.strip(), "device_ops": len(calls),
                "device_op_ms": statistics.median(calls) * 1e3 if calls else float("nan"),
                "embed_ms": (max(e for _, e in span) - min(s for s, _ in span)) * 1e3,
                "prefill_ms": (max(e for _, e in prefill) - min(s for s, _ in prefill)) * 1e3,
                "decode_steps": decoded, "decode_s": last - first}

    _serve(conn, run, time.perf_counter() - t0)
    if trace:
        session.trace.write(trace)


def _serve(conn, run, load_s: float, torch=None, warmups: int = 2) -> None:
    for i in range(warmups):  # CUDA contexts, kernels, caches; torch.compile's graphs
        run(QUESTIONS[i % len(QUESTIONS)])
    conn.send({"ready": True, "load_s": load_s})
    while (q := conn.recv()) is not None:
        t = time.perf_counter()
        r = run(q)
        r["s"] = time.perf_counter() - t
        conn.send(r)
    cuda = torch is not None and torch.cuda.is_available()
    conn.send({"gpu_peak_mb": torch.cuda.max_memory_allocated() / 2**20 if cuda else float("nan")})


def run_bench(build: Path, requests: int, max_tokens: int, out_json: str | None, runtime_flags: list[str],
              trace: str | None = None, anchors: tuple[str, ...] = ("eager",)) -> None:
    from torch_pipelines import worker

    regen = regenerate(build)
    ctx = mp.get_context("spawn")
    workers = {}
    targets = {a: worker(a) for a in anchors}  # an unknown anchor fails before anything starts
    for name, target, args in (*((a, f, (str(build), max_tokens, *more)) for a, (f, more) in targets.items()),
                               ("agentc", agentc_worker, (str(build), runtime_flags, trace))):
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=target, args=(child, *args), daemon=True)
        proc.start()
        child.close()  # so that a worker's crash ends recv() instead of hanging it
        workers[name] = (proc, parent, parent.recv())
        print(f"{name}: ready in {workers[name][2]['load_s']:.1f} s", file=sys.stderr, flush=True)
    names = [*anchors, "agentc"]
    results = {n: [] for n in names}
    for i in range(requests):
        q = QUESTIONS[i % len(QUESTIONS)]
        for name in (names if i % 2 == 0 else names[::-1]):
            workers[name][1].send(q)
            results[name].append(workers[name][1].recv())
        a = results["agentc"][-1]
        print(f"[{i + 1:2d}/{requests}] agentc {a['s'] * 1e3:6.1f} ms  " + "  ".join(
            f"{n} {results[n][-1]['s'] * 1e3:6.1f} ms (same passages {results[n][-1]['context'] == a['context']}, "
            f"answer {results[n][-1]['answer'] == a['answer']})" for n in anchors), file=sys.stderr, flush=True)
    finals = {}
    for name, (proc, conn, _) in workers.items():
        conn.send(None)
        finals[name] = conn.recv()
        proc.join(timeout=60)

    def summary(rs):
        return {"median_ms": statistics.median(r["s"] for r in rs) * 1e3,
                "embed_ms": statistics.median(r["embed_ms"] for r in rs),
                "prefill_ms": statistics.median(r["prefill_ms"] for r in rs),
                "decode_tok_s": statistics.median(r["decode_steps"] / r["decode_s"] for r in rs)}

    s = {n: summary(rs) for n, rs in results.items()}
    gpu = _gpu_name()
    print(f"device: {gpu}; {requests} requests each, at most {max_tokens} tokens, random weights of the real "
          f"architectures (hashes match: {all(r['hash_matches'] for r in regen.values())}); "
          f"agentc's weights: {json.loads((build / 'manifest.json').read_text())['precision']['weights'].get(LLM)}")
    for n in names:
        print(f"{n:17s}: median {s[n]['median_ms']:7.1f} ms/request, embed {s[n]['embed_ms']:6.2f} ms, "
              f"prefill {s[n]['prefill_ms']:6.2f} ms, decode {s[n]['decode_tok_s']:6.1f} tok/s")
    a = results["agentc"]
    print(f"agentc: {a[0]['device_ops']} device operators per request, median {statistics.median(r['device_op_ms'] for r in a):.3f} ms "
          f"each (call to results; runtime flags: {' '.join(runtime_flags) or 'none'})")
    for n in anchors:
        same_ctx = sum(e["context"] == x["context"] for e, x in zip(results[n], a))
        same = sum(e["answer"] == x["answer"] for e, x in zip(results[n], a))
        print(f"{n}: peak GPU memory (torch) {finals[n]['gpu_peak_mb']:.0f} MB; same retrieved passages as agentc "
              f"{same_ctx}/{requests}, same answers {same}/{requests}")
    if out_json:
        Path(out_json).write_text(json.dumps({"device": gpu, "regenerated": regen, "summary": s, "results": results},
                                             indent=1))
    for n in anchors:
        print(f"speedup_vs_{n.replace('-', '_')}={s[n]['median_ms'] / s['agentc']['median_ms']:.2f}")
        print(f"decode_vs_{n.replace('-', '_')}={s['agentc']['decode_tok_s'] / s[n]['decode_tok_s']:.2f}")


def _gpu_name() -> str:
    import torch

    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("compile", help="compile for cuda here; write the carryable build")
    c.add_argument("--out", default=str(ROOT / ".device" / "gpu-models"))
    c.add_argument("--max-tokens", type=int, default=32)
    c.add_argument("--devices", default="cuda", help="device kinds (cpu: a local dry run of `run`)")
    c.add_argument("--granularity", choices=("layer", "step"), default="layer", help="LLM operators per layer or step")
    c.add_argument("--iree-flag", action="append", default=[], help="extra iree-compile flag (repeatable)")
    c.add_argument("--cuda-form", action="append", default=[], metavar="NAME=VALUE",
                   help="a cuda form of the imported models, e.g. weight_dtype=float32 (repeatable)")
    r = sub.add_parser("run", help="on the GPU host: agentc vs PyTorch eager")
    r.add_argument("build")
    r.add_argument("--requests", type=int, default=20)
    r.add_argument("--max-tokens", type=int,
                   help="eager's token budget (default and only allowed value: the build's)")
    r.add_argument("--json")
    r.add_argument("--trace", help="write agentc's timeline (Chrome/Perfetto JSON) here")
    r.add_argument("--runtime-flag", action="append", default=[], help="IREE runtime flag, e.g. --cuda_use_streams=false")
    r.add_argument("--anchors", default="eager",
                   help="PyTorch pipelines beside agentc, comma-separated: eager, compiled-float32, compiled-bfloat16")
    args = p.parse_args(argv)
    if args.cmd == "compile":
        compile_build(Path(args.out), args.max_tokens, args.devices.split(","), args.granularity, args.iree_flag,
                      args.cuda_form)
    else:
        settings = Path(args.build) / SETTINGS
        built = json.loads(settings.read_text())["max_tokens"] if settings.exists() else 32
        if args.max_tokens is not None and args.max_tokens != built:
            raise SystemExit(f"gpu_models run: --max-tokens {args.max_tokens}: {args.build} was compiled "
                             f"to generate {built} tokens; the two sides would answer differently "
                             f"(compile with --max-tokens {args.max_tokens})")
        run_bench(Path(args.build), args.requests, built, args.json, args.runtime_flag, args.trace,
                  tuple(args.anchors.split(",")))


if __name__ == "__main__":
    main()
