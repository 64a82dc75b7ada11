"""The build directory: per-target modules (CUDA compiles here without a GPU), content
hashes, and warm recompiles served from the cache."""

import hashlib
import json
import time

import iree.runtime as rt
from conftest import EXAMPLES, agentc_cli


def test_cuda_module_compiles_without_a_gpu(tmp_path):
    r = agentc_cli("compile", EXAMPLES / "rag_agent.py", "-o", tmp_path, "--devices", "cuda")
    assert r.returncode == 0, r.stderr
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["modules"]["cuda"]["target"] == "cuda"
    assert "--iree-cuda-target=sm_80" in manifest["modules"]["cuda"]["flags"]
    vmfb = (tmp_path / "cuda.vmfb").read_bytes()
    module = rt.VmModule.copy_buffer(rt.VmInstance(), vmfb)  # parses without a CUDA device
    assert {"tiny_lm__prefill", "tiny_lm__decode", "tiny_encoder__encode"} <= set(module.function_names)
    assert b".target sm_80" in vmfb  # the embedded PTX is for the requested architecture
    for name, digest in manifest["files"].items():
        assert hashlib.sha256((tmp_path / name).read_bytes()).hexdigest() == digest, name
    plan = json.loads((tmp_path / "plan.json").read_text())
    assert {op["device"] for op in plan["ops"] if op["kind"] == "call"} == {"cuda"}


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
