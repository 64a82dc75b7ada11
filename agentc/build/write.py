"""The build stage: a placed agent -> a build directory a runtime loads on its own.

A build directory holds agent.mlir, operators.mlir, plan.json, one .vmfb (and its input
.mlir) per device, weights/<owner>.irpa (IREE parameter archives, see
agentc.build.weights), models/<model>/ (the config and tokenizer files of the models its host
operators use), tools.pkl (the graph's tools,
recorded: agentc/build/tools.py), a copy of graph.py and its corpora for reference, and
manifest.json (the sha256 of every file, checked at load: agentc/runtime/verify.py).
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

from agentc import store
from agentc.build.iree_compile import compile_module
from agentc.build.tools import TOOLS_FILE, record_tools
from agentc.build.weights import WEIGHTS_DIR, file_name, owner, write_build_weights
from agentc.devices import KINDS
from agentc.frontend.graph import AgentError
from agentc.ir.lower import Lowered
from agentc.ir.plan import build_plan
from agentc.models import registry
from agentc.passes import run_pass
from agentc.passes.assign_devices import AssignDevices
from agentc.passes.outline_device_modules import OutlineDeviceModules
from agentc.placement.place import Placement
from agentc.placement.policy import log
from agentc.placement.problem import PROBLEM_FILE, placement_problem


def realize(low: Lowered, placement: Placement) -> tuple[str, dict[str, str], dict[str, list[str]]]:
    """The placement written into the operator IR (assign-devices), then one IREE input
    module per device (outline-device-modules): (the placed IR's text, {device: module},
    {device: the weight archives its module reads})."""
    runtimes = {n: d.runtime for n, d in placement.cluster.devices.items()}
    return outline(low.ctx, low.module, {op.name: (op.device, op.start, op.end) for op in placement.ops}, runtimes)


def outline(ctx, module, placed: dict[str, tuple], runtimes: dict[str, str | None]):
    """`realize` on any operator module (a build's operators.mlir, re-placed at run time):
    `placed` maps operator names to (device, start s, end s)."""
    with ctx:
        run_pass(module, AssignDevices(placed))
        outlined = OutlineDeviceModules(runtimes)
        run_pass(module, outlined)
        archives = {d: sorted({f"{WEIGHTS_DIR}/{file_name(owner(g))}" for g in keys})
                    for d, keys in outlined.device_weights.items()}
        return module.operation.get_asm(enable_debug_info=True), outlined.device_modules, archives


def _kernel_table(low: Lowered, placed, cluster) -> dict:
    """What `agentc calibrate` needs of each call's kernel (agentc.cost.kernel_table)."""
    from agentc.cost.kernel_table import kernel_table

    calls = {(op.callee, op.device, cluster.devices[op.device].runtime) for op in placed if op.kind == "call"}
    with low.ctx:
        return kernel_table(low.funcs, calls, {d: cluster.devices[d].spec for _, d, _ in calls}, low.works, low.digests)


def write_build(low: Lowered, placement: Placement, graph_path, out: Path, opts) -> None:
    """Write the build directory: IR, plan, modules, weights, tools, manifest."""
    cluster = placement.cluster
    where = {}
    for op in low.ops:
        if op.kind == "tool":
            where.setdefault(op.attrs["callee"], op.loc)
    tools = record_tools({n: low.graph.tools[n] for n in where}, where) if where else None  # before any work
    used = {op.device for op in placement.ops if op.kind == "call"}
    for name in sorted(used):
        if cluster.devices[name].runtime is None:
            raise AgentError(f"device '{name}' ({cluster.devices[name].type}) has no agentc runtime; "
                             f"`agentc place` can plan for it, but a build cannot run there")
    files_of = {name: module_file(name) for name in used}
    kernels = _kernel_table(low, placement.ops, cluster)  # before realize rewrites the module
    operators_text, device_modules, device_archives = realize(low, placement)
    with low.ctx:
        placed, _, _ = build_plan(low.module, low.graph.name)  # the plan, as the IR now says it
    plan = {
        "agent": low.graph.name, "inputs": [v.name for v in low.graph.inputs], "input_ids": low.inputs,
        "outputs": low.outputs, "sla_ms": placement.sla_ms,
        "placement": {k: v for k, v in placement.to_json().items() if k != "solve_time_s"},  # reproducible
        "devices": {n: {"runtime": cluster.devices[n].runtime, "module": files_of[n], "node": cluster.devices[n].node,
                        "weights": device_archives.get(n, [])} for n in sorted(used)},
        "ops": [op.to_json() for op in placed],
        "kernels": kernels,
        # passages in files of their own: a million of them would make plan.json 100 MB
        "indexes": {n: f"indexes/{n}.passages.json" for n in low.graph.indexes},
    }
    out.mkdir(parents=True, exist_ok=True)
    # No manifest until every file is written: a build cut short is refused at load.
    (out / "manifest.json").unlink(missing_ok=True)
    graph_file = Path(graph_path).resolve()
    files = {"agent.mlir": low.agent_text.encode(), "operators.mlir": operators_text.encode(),
             "graph.py": graph_file.read_bytes(), **_corpora(low.graph, graph_file.parent)}
    modules = {}
    for device, text in device_modules.items():
        kind = KINDS[cluster.devices[device].runtime]
        t1 = time.perf_counter()
        vmfb, hit = compile_module(text, kind.target, kind.compile_flags, device)
        log(opts, f"{device}: {'cached' if hit else 'compiled'} module ({time.perf_counter() - t1:.1f}s)")
        files[files_of[device] + ".vmfb"] = vmfb
        files[files_of[device] + ".mlir"] = text.encode()
        modules[device] = {"target": kind.target, "flags": list(kind.compile_flags), "cached": hit}
    plan["models"] = _model_files(low.ops, files)
    files.update({plan["indexes"][n]: json.dumps({"passages": idx.passages}).encode()
                  for n, idx in low.graph.indexes.items()})
    plan["ann"] = _ann_files(low.graph, files)
    files[PROBLEM_FILE] = json.dumps(placement_problem(placement, opts)).encode()
    if tools:
        files[TOOLS_FILE] = tools
    earlier = list(out.glob("*.vmfb")) + [out / (p.stem + ".mlir") for p in out.glob("*.vmfb")]
    earlier += [*out.glob("tokenizers/*.json"), *out.glob("models/**/*.*"), *out.glob("indexes/*"), out / TOOLS_FILE]
    for stale in earlier:
        if stale.relative_to(out).as_posix() not in files:  # left by an earlier build of this directory
            stale.unlink(missing_ok=True)
    weights = write_build_weights(low.weights, out)
    plan["weights"] = sorted(weights)
    files["plan.json"] = json.dumps(plan, indent=1).encode()
    hashes = {name: store.write_file(out / name, data) for name, data in files.items()}
    hashes.update({rel: entry["file_sha256"] for rel, entry in weights.items()})
    manifest = {"graph": str(graph_file), "modules": modules, "weights": weights,
                "precision": precision(low.weights), "files": dict(sorted(hashes.items()))}
    store.write_file(out / "manifest.json", json.dumps(manifest, indent=1).encode())
    store.remember_all({out / name: sha for name, sha in hashes.items()})  # loads need not hash them


def precision(weights: dict) -> dict:
    """What a build computes in: kernels in float32, and each model's (or index's) weights in
    the forms they are stored and streamed in (its weight groups by model): element types,
    and quantized blocks by their GGUF form (agentc.models.split_linears names them
    `<weight>.<form>.<part>`)."""
    from agentc.cpu_kernels.blocks import FORMS
    from agentc.models.split_linears import PARTS

    by_model: dict[str, set[str]] = {}
    for group, params in weights.items():
        forms = by_model.setdefault(group.split("/", 1)[0], set())
        for name, a in params.items():
            head, _, part = name.rpartition(".")
            form = head.rpartition(".")[2]
            if form in FORMS and part in PARTS:
                forms.add(form)
            else:
                forms.add(str(a.dtype))
    return {"compute": "float32", "weights": {m: "+".join(sorted(d)) for m, d in sorted(by_model.items())}}


def _model_files(ops, files: dict[str, bytes]) -> dict[str, dict]:
    """The small files (config, tokenizer, chat template) of the imported models that the
    build's host operators use, copied in (`models/<model>/`) so that the runtime needs
    neither the model's directory nor its package, with the config agentc derived from them
    (registry.DERIVED), so that it needs no transformers either. Returns {model: {"dir": relative path,
    "key": its registry name}}."""
    out = {}
    for op in ops:
        name = op.attrs.get("model") if op.kind in ("tokenize", "detokenize", "pair_tokenize") else None
        if name is None or name in out:
            continue
        m = registry.model(name) if op.kind != "pair_tokenize" else registry.reranker(name)
        if hasattr(m, "ckpt"):
            key = getattr(m, "key", m.config.name)
            rel = f"models/{key.partition('@')[0]}"  # registry names are file-safe
            for path, data in m.ckpt.carried_files().items():
                files[f"{rel}/{path}"] = data
            files[f"{rel}/{registry.DERIVED}"] = registry.derived_config(m)
            out[name] = {"dir": rel, "key": key}
    return out


def _ann_files(graph, files: dict[str, bytes]) -> dict[str, str]:
    """The FAISS indexes of the graph's approximate-search indexes, copied in
    (`indexes/<name>.faiss`). Returns {index name: relative path}."""
    out = {}
    for name, index in graph.indexes.items():
        if index.search == "ann":
            out[name] = f"indexes/{name}.faiss"
            files[out[name]] = index.ann_bytes
    return out


def _corpora(graph, graph_dir: Path) -> dict[str, bytes]:
    """The corpus files the graph's indexes read, at their paths relative to graph.py, so a
    build directory runs on a machine without the sources."""
    out = {}
    for index in graph.indexes.values():
        try:
            rel = index.path.resolve().relative_to(graph_dir)
        except ValueError:
            continue  # an absolute path outside the graph's folder: read from where it is
        out[rel.as_posix()] = index.path.read_bytes()
    return out


def module_file(device: str) -> str:
    """A device's module file stem: its name, with instance separators made file-safe."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", device)
