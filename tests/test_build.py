"""The build directory: per-target modules (CUDA compiles here without a GPU), content
hashes, and warm recompiles served from the cache."""

import hashlib
import json
import time

import iree.runtime as rt
import numpy as np
from conftest import EXAMPLES, agentc_cli


def test_cuda_module_compiles_without_a_gpu(tmp_path):
    r = agentc_cli("compile", EXAMPLES / "rag_agent.py", "-o", tmp_path, "--devices", "cuda")
    assert r.returncode == 0, r.stderr
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["modules"]["cuda"]["target"] == "cuda"
    assert "--iree-cuda-target=sm_80" in manifest["modules"]["cuda"]["flags"]
    vmfb = (tmp_path / "cuda.vmfb").read_bytes()
    module = rt.VmModule.copy_buffer(rt.VmInstance(), vmfb)  # parses without a CUDA device
    assert {"tiny_lm__prefill", "tiny_encoder__encode"} <= set(module.function_names)
    # The decode step, or (cuda's round trip per step is large: agentc.cost.decode_chunk) a chunk of steps.
    assert any(n.startswith("tiny_lm__decode") for n in module.function_names)
    assert b".target sm_80" in vmfb  # the embedded PTX is for the requested architecture
    for name, digest in manifest["files"].items():
        assert hashlib.sha256((tmp_path / name).read_bytes()).hexdigest() == digest, name
    plan = json.loads((tmp_path / "plan.json").read_text())
    assert {op["device"] for op in plan["ops"] if op["kind"] == "call"} == {"cuda"}


def test_weights_are_parameter_archives_not_mlir_text(tmp_path):
    """One .irpa per owner (model or index), named by `#flow.parameter.named` in the device
    module, holding exactly the seeded weights, and hashed in the manifest."""
    from agentc.build.weights import content_digest
    from agentc.models.irpa import read_irpa
    from agentc.models.params import seeded_normal

    assert agentc_cli("compile", EXAMPLES / "rag_agent.py", "-o", tmp_path, "--devices", "cpu").returncode == 0
    plan = json.loads((tmp_path / "plan.json").read_text())
    assert plan["weights"] == ["weights/index_facts.irpa", "weights/tiny-encoder.irpa", "weights/tiny-lm.irpa"]
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    for rel, entry in manifest["weights"].items():
        groups = read_irpa(tmp_path / rel)
        assert content_digest(groups) == entry["sha256"], rel
        assert sorted(groups) == entry["groups"]
    enc = read_irpa(tmp_path / "weights/tiny-encoder.irpa")["tiny-encoder"]
    wq = enc["l0.wq"]
    np.testing.assert_array_equal(wq, seeded_normal("tiny-encoder", "l0.wq", wq.shape, 1 / np.sqrt(wq.shape[0])))
    assert '#flow.parameter.named<"agentc"::"tiny-encoder/l0.wq">' in (tmp_path / "cpu.mlir").read_text()
    weight_bytes = sum(e["bytes"] for e in manifest["weights"].values())
    assert (tmp_path / "cpu.vmfb").stat().st_size < weight_bytes / 2  # the weights are not inside


def test_recompile_copies_the_cached_archives_and_drops_unused_ones(tmp_path):
    from agentc import store

    assert agentc_cli("compile", EXAMPLES / "rag_agent.py", "-o", tmp_path, "--devices", "cpu").returncode == 0
    lm = tmp_path / "weights" / "tiny-lm.irpa"
    sha = json.loads((tmp_path / "manifest.json").read_text())["files"]["weights/tiny-lm.irpa"]
    obj = store.cache_dir() / "objects" / sha[:2] / f"{sha}.irpa"
    assert lm.read_bytes() == obj.read_bytes() and not lm.samefile(obj)  # a copy, never a link
    inode = lm.stat().st_ino
    assert agentc_cli("compile", EXAMPLES / "fanout_agent.py", "-o", tmp_path, "--devices", "cpu").returncode == 0
    assert sorted(p.name for p in (tmp_path / "weights").iterdir()) == ["tiny-lm.irpa"]
    assert lm.stat().st_ino == inode  # verified and kept, not copied again


def test_missing_archive_is_a_clear_error(tmp_path):
    assert agentc_cli("compile", EXAMPLES / "fanout_agent.py", "-o", tmp_path, "--devices", "cpu").returncode == 0
    (tmp_path / "weights" / "tiny-lm.irpa").unlink()
    r = agentc_cli("run", tmp_path, "--input", "query=x")
    assert r.returncode != 0
    assert "weights/tiny-lm.irpa: missing (listed in manifest.json)" in r.stderr
    assert r.returncode == 2
    assert "Traceback" not in r.stderr


def test_warm_recompile_is_cached_and_fast(tmp_path):
    args = ("compile", EXAMPLES / "rag_agent.py", "-o", tmp_path, "--devices", "cpu,vulkan")
    assert agentc_cli(*args).returncode == 0
    first = json.loads((tmp_path / "manifest.json").read_text())
    t0 = time.perf_counter()
    r = agentc_cli(*args)
    elapsed = time.perf_counter() - t0
    assert r.returncode == 0, r.stderr
    second = json.loads((tmp_path / "manifest.json").read_text())
    assert all(m["cached"] for m in second["modules"].values())
    assert second["files"] == first["files"]  # the same build, byte for byte
    assert elapsed <= 2.0, f"warm recompile took {elapsed:.2f} s (goal: 2 s)"


def test_rebuild_drops_modules_of_devices_no_longer_used(tmp_path):
    assert agentc_cli("compile", EXAMPLES / "rag_agent.py", "-o", tmp_path, "--devices", "cuda").returncode == 0
    assert agentc_cli("compile", EXAMPLES / "rag_agent.py", "-o", tmp_path, "--devices", "cpu").returncode == 0
    assert not (tmp_path / "cuda.vmfb").exists()
    assert (tmp_path / "cpu.vmfb").exists()


def test_each_device_module_names_only_its_own_weights():
    """A device loads the parameters its module names: with the encoder on vulkan and the
    rest on cpu, neither module names the other's weights."""
    import re

    from agentc.ir.lower import lower
    from agentc.passes import run_pass
    from agentc.passes.assign_devices import AssignDevices
    from agentc.passes.outline_device_modules import OutlineDeviceModules

    low = lower(EXAMPLES / "rag_agent.py")
    where = {op.name: ("vulkan" if op.name.startswith("embed_query") else "cpu" if op.kind == "call" else "host",
                       0.0, 0.0) for op in low.ops}
    with low.ctx:
        run_pass(low.module, AssignDevices(where))
        outline = OutlineDeviceModules()
        run_pass(low.module, outline)
    owners = {d: set(re.findall(r'#flow\.parameter\.named<"agentc"::"([^"/]+)/', text))
              for d, text in outline.device_modules.items()}
    assert owners == {"vulkan": {"tiny-encoder"}, "cpu": {"tiny-lm", "index:facts"}}


def test_corrupt_or_foreign_archives_are_clear_errors(tmp_path):
    """A truncated archive, and an archive without the weights the module names, each give
    one line naming the file: refused by the manifest check, and with it skipped
    (--no-verify), by the loader naming the file or the missing key, not an IREE traceback."""
    from agentc.models.irpa import write_irpa

    assert agentc_cli("compile", EXAMPLES / "fanout_agent.py", "-o", tmp_path, "--devices", "cpu").returncode == 0
    archive = tmp_path / "weights" / "tiny-lm.irpa"
    archive.write_bytes(archive.read_bytes()[:1000])
    for flags, needle in (((), "tiny-lm.irpa: changed since the build was written"),
                          (("--no-verify",), "tiny-lm.irpa: not a readable weights archive")):
        r = agentc_cli("run", tmp_path, "--input", "query=x", *flags)
        assert r.returncode == 2 and "Traceback" not in r.stderr
        assert needle in r.stderr
    archive.unlink()
    write_irpa(archive, {"tiny-lm": {"unrelated": np.zeros(3, np.float32)}})
    r = agentc_cli("run", tmp_path, "--input", "query=x", "--no-verify")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "device 'cpu' could not load its module: no parameter found in index with key 'tiny-lm/" in r.stderr


def test_impl_for_picks_a_runtimes_variant_and_falls_back_to_the_default():
    """What outline-device-modules and the cost model both use to choose an implementation:
    the runtime's variant where there is one, else the default (also for a device that has
    no runtime, such as a catalog GPU placed but not run here)."""
    from agentc.models.kernels import impl_for, variant_symbol

    funcs = {"k_impl": "default", variant_symbol("k", "cuda"): "cuda form"}
    assert impl_for(funcs, "k", "cuda") == "cuda form"
    assert impl_for(funcs, "k", "cpu") == "default"
    assert impl_for(funcs, "k", None) == "default"


def test_runtime_does_not_run_graph_py(tmp_path):
    """Tools are recorded into the build at compile time (tools.pkl: graph.py's own
    functions, lambdas and partials by value); loading and running a build never executes
    graph.py, which here leaves a mark each time it runs."""
    import agentc

    mark = tmp_path / "ran"
    g = tmp_path / "marked.py"
    g.write_text(
        "import functools, pathlib\nimport agentc\n"
        f"pathlib.Path({str(mark)!r}).open('a').write('x')\n\n"
        "def shout(q, end):\n    return q.upper() + end\n\n"
        "@agentc.agent\ndef a(q):\n"
        "    loud = agentc.tool(functools.partial(shout, end='!'), q)\n"
        "    return agentc.tool(lambda x: x + '?', loud)\n")
    placement = agentc.compile(str(g), str(tmp_path / "b"), devices=["cpu"], quiet=True)
    mark.unlink()
    with agentc.load(placement.build_dir) as s:
        assert s.run({"q": "hi"})["outputs"] == ["HI!?"]
    assert not mark.exists()
    assert (tmp_path / "b" / "tools.pkl").is_file()
