"""`agentc bench` on this machine's CPU: the quick sweep end to end, the split compile/run
mode a GPU machine uses (its runner must need only numpy and iree.runtime), flag variants,
and the errors a user can make."""

import json
import re
import subprocess
import sys
import time

from conftest import ROOT

from agentc.cost.profile_json import load_profile

# Run the artifact runner with the compiler side of agentc and its heavy dependencies made
# unimportable, as on a GPU machine that has only numpy, iree.runtime (and maybe torch).
RUNNER_WITHOUT_COMPILER = """
import importlib.abc, runpy, sys
BLOCKED = ("torch_mlir", "iree.compiler", "yaml", "networkx", "ortools", "transformers", "gguf",
           "sentence_transformers", "agentc.compiler", "agentc.cost", "agentc.runtime",
           "agentc.ir", "agentc.passes", "agentc.scheduler", "agentc.bench.artifacts",
           "agentc.bench.cli")
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.startswith(BLOCKED):
            raise ImportError(f"blocked on the device machine: {name}")
sys.meta_path.insert(0, Block())
sys.argv = ["run_artifacts", *sys.argv[1:]]
runpy.run_module("agentc.bench.run_artifacts", run_name="__main__")
"""


def bench(*args, timeout=600):
    return subprocess.run([sys.executable, "-m", "agentc.cli", "bench", "kernels", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, cwd=ROOT, check=False)


def test_quick_cpu_bench_writes_a_profile_the_cost_model_loads(tmp_path):
    out, png = tmp_path / "cpu.json", tmp_path / "cpu.png"
    t0 = time.perf_counter()
    r = bench("--target", "cpu", "--quick", "--out", out, "--plot", png, timeout=240)
    elapsed = time.perf_counter() - t0
    assert r.returncode == 0, r.stderr
    assert elapsed < 180, f"--quick took {elapsed:.0f} s (goal: < 3 min)"
    assert re.fullmatch(r"mape_pct=\d+\.\d", r.stdout.strip().splitlines()[-1])
    assert "measure cpu:base [" in r.stderr  # the progress bar
    profile = load_profile(out)
    data = profile.data
    assert data["target"] == "cpu" and data["iree_version"]["compiler"]
    assert "--iree-llvmcpu-target-cpu=host" in data["flags"]
    assert {"gemm", "attention", "softmax", "layernorm", "add", "sum_rows", "topk"} <= {
        k["op"] for k in data["kernels"]}
    for k in data["kernels"]:
        assert k["p10_s"] <= k["measured_s"] <= k["p90_s"] and k["n"] >= 3
        assert k["flops"] > 0 and k["bytes"] > 0
    assert data["overheads"]["call_s"] > 0 and data["overheads"]["dispatch_extra_s"] >= 0
    assert {t["direction"] for t in data["transfers"]} == {"h2d", "d2h"}
    assert profile.mape_pct_holdout is not None
    assert png.stat().st_size > 10_000


def test_split_mode_compiles_here_and_runs_with_only_numpy_and_iree_runtime(tmp_path):
    art = tmp_path / "art"
    base = bench("--target", "cpu", "--compile-only", "--artifacts", art, "--kernels", "gemm,add",
                 "--quick", "--quiet")
    assert base.returncode == 0, base.stderr
    variant = bench("--target", "cpu", "--compile-only", "--artifacts", art, "--kernels",
                    "gemm,add", "--quick", "--quiet", "--iree-flag=--iree-opt-level=O3")
    assert variant.returncode == 0, variant.stderr
    manifest = json.loads((art / "manifest.json").read_text())
    assert set(manifest["variants"]) == {"base", "opt-level-O3"}
    assert "--iree-opt-level=O3" in manifest["variants"]["opt-level-O3"]["flags"]
    kernels = manifest["variants"]["base"]["kernels"]
    assert [k["name"] for k in kernels if k["role"] == "overhead"] == [
        "identity", "add_f32_1", "chain_f32_1x16", "chain_f32_8x16", "chain_f32_32x16"]
    assert all(k["flops"] > 0 for k in kernels if k["role"] == "kernel")

    out = tmp_path / "measured.json"
    r = subprocess.run([sys.executable, "-c", RUNNER_WITHOUT_COMPILER, art, "--out", out,
                        "--budget", "0.02", "--rounds", "2", "--reference", "cpu", "--quick"],
                       capture_output=True, text=True, timeout=300, cwd=ROOT, check=False)
    assert r.returncode == 0, r.stderr
    variant_out = tmp_path / "measured.opt-level-O3.json"
    assert f"profile: {out}" in r.stdout and f"profile: {variant_out}" in r.stdout
    measured = json.loads(out.read_text())
    assert "calibration" not in measured  # fitted later, where agentc is installed
    assert {r["name"] for r in measured["reference"]} >= {"gemm_f32_64x64x64"}
    assert json.loads(variant_out.read_text())["variant"] == "opt-level-O3"

    fitted = tmp_path / "fitted.json"
    f = bench("--fit", out, "--out", fitted, "--compare", variant_out)
    assert f.returncode == 0, f.stderr
    assert "torch f32 us" in f.stdout  # PyTorch's times beside IREE's
    assert "geometric mean ratio" in f.stdout  # the O3 variant against the base build
    assert f.stdout.strip().splitlines()[-1].startswith("mape_pct=")
    assert load_profile(fitted).target == "cpu"


def test_fit_of_a_malformed_profile_names_file_and_field(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"target": "cpu", "spec": {"peak_flops": 1e11,
                                                         "memory_bandwidth": 1e10},
                               "kernels": [{"name": "k", "op_class": "matmul", "dtype": "f32",
                                            "flops": 1.0, "bytes": "x", "measured_s": 1e-3}]}))
    r = bench("--fit", bad)
    assert r.returncode == 2
    assert r.stderr.strip() == (f"agentc bench: error: {bad}: kernels[0].bytes: "
                                "expected a number, got 'x'")


def test_usage_mistakes_are_one_line_errors(tmp_path):
    r = bench("--target", "cuda", "--compile-only")
    assert r.returncode == 2 and "--compile-only needs --artifacts DIR" in r.stderr
    r = bench("--target", "cpu", "--kernels", "gemm,fft", "--compile-only", "--artifacts", tmp_path)
    assert r.returncode == 2 and "--kernels: unknown op 'fft'" in r.stderr
    r = subprocess.run([sys.executable, "-m", "agentc.bench.run_artifacts", tmp_path],
                       capture_output=True, text=True, cwd=ROOT, check=False)
    assert r.returncode == 2 and "no manifest.json" in r.stderr


def test_the_plot_is_skipped_with_a_note_without_matplotlib(tmp_path, monkeypatch):
    from agentc.bench.plot import roofline_png

    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now fails
    note = roofline_png({"kernels": []}, tmp_path / "p.png")
    assert note.startswith("plot skipped: matplotlib is not installed")
    assert not (tmp_path / "p.png").exists()


def test_refitting_reanalyses_kernels_under_the_current_cost_model():
    """A profile measured under older op classes is priced by today's: the kernel's case is
    rebuilt from its op and params and analysed again; kernels from no case keep theirs."""
    from agentc.bench.artifacts import reanalyse
    from agentc.bench.sweep import Case

    case = Case("softmax", "f32", (("rows", 8), ("cols", 16)))
    stale = {"name": case.name, "op": "softmax", "dtype": "f32", "params": {"rows": 8, "cols": 16},
             "op_class": "normalization", "flops": 1.0, "bytes": 1.0, "dispatches": 1}
    foreign = {"name": "mine", "op": "custom", "dtype": "f32", "params": {},
               "op_class": "normalization", "flops": 1.0, "bytes": 1.0, "dispatches": 1}
    assert reanalyse([stale, foreign]) == 1
    assert stale["op_class"] == "softmax"
    assert stale["bytes"] == 2 * 8 * 16 * 4 and stale["flops"] > 8 * 16
    assert foreign["op_class"] == "normalization"
    assert reanalyse([stale]) == 0


def test_dispatch_grids_are_read_from_the_iree_codegen():
    """The workgroup counts come from IREE's compile of the kernel, per target: the cuda
    f32 matmul is tiled 32x128 per workgroup (the waves the H200 profile charges)."""
    from agentc.bench import mlir_text
    from agentc.bench.dispatch_grid import dispatch_grid

    text = mlir_text.matmul("g", 128, 768, 3072, "f32")
    assert dispatch_grid(text, "cuda", ("--iree-cuda-target=sm_80",)) == [[128 * 3072 * 768, 4 * 24]]
    [[size, workgroups]] = dispatch_grid(text, "llvm-cpu", ("--iree-llvmcpu-target-cpu=host",))
    assert size == 128 * 3072 * 768 and workgroups >= 2


def test_vulkan_gives_a_one_row_reduction_a_single_invocation():
    """Read off the same cached listing as the grid: IREE's baseline SPIR-V reduces one row
    in one invocation (what lavapipe's loop limit cuts short), many rows 64 at a time."""
    from agentc.bench import mlir_text
    from agentc.bench.dispatch_grid import workgroup_sizes

    assert workgroup_sizes(mlir_text.sum_rows("r", 1, 4096, "f32"), "vulkan-spirv", ()) == [1]
    assert workgroup_sizes(mlir_text.sum_rows("r", 256, 256, "f32"), "vulkan-spirv", ()) == [64]


def test_a_dynamic_workgroup_count_is_recorded_as_unknown():
    from agentc.bench.dispatch_grid import parse_grid

    listing = """
      hal.executable.export public @f_dispatch_0_matmul_4x8x16_f32 ordinal(0) layout(#l) count(%arg0: !hal.device, %arg1: index) -> (index, index, index) {
        %c1 = arith.constant 1 : index
        %x = affine.apply #map()[%arg1]
        hal.return %x, %c1, %c1 : index, index, index
      }
      hal.executable.export public @f_dispatch_1_reduction_32_f32 ordinal(0) layout(#l) count(%arg0: !hal.device) -> (index, index, index) {
        %c3 = arith.constant 3 : index
        %c1 = arith.constant 1 : index
        hal.return %c3, %c1, %c1 : index, index, index
      }"""
    assert parse_grid(listing) == [[4 * 8 * 16, 0], [32, 3]]


def test_the_vulkan_sweep_leaves_out_loops_past_lavapipes_iteration_limit():
    """One-row reductions get one invocation in IREE's SPIR-V; lavapipe stops its loops
    after 65,535 iterations (the catalog's max_loop_iterations), so only shorter rows are
    timed (experiments/cost-model/vulkan_results_check.py shows the longer ones' results are wrong there).
    Other targets keep them all."""
    from agentc.bench.sweep import sweep

    names = {c.name for c in sweep("vulkan", quick=False)}
    assert "sum_rows_f32_1x32768" in names and "sum_rows_f32_1x131072" not in names
    assert "sample_f32_49152" in names and "sample_f32_128256" not in names
    assert "topk_f32_10000x5" in names and "topk_f32_100000x5" not in names
    assert "softmax_f32_1x49152" not in names and "softmax_f32_64x8192" in names
    assert "sum_rows_f32_1x131072" in {c.name for c in sweep("cpu", quick=False)}


def test_lavapipe_runs_workgroups_on_its_threads(monkeypatch):
    """Lavapipe's compute units are Mesa's threads (`LP_NUM_THREADS`, one per CPU unless
    set; 0 runs workgroups on the submitting thread); other Vulkan devices do not say."""
    from agentc.bench.run_artifacts import compute_units

    name = "llvmpipe (LLVM 15.0.6, 256 bits)"
    monkeypatch.setenv("LP_NUM_THREADS", "3")
    assert compute_units("vulkan", name) == 3
    monkeypatch.setenv("LP_NUM_THREADS", "0")
    assert compute_units("vulkan", name) == 1
    monkeypatch.delenv("LP_NUM_THREADS")
    assert compute_units("vulkan", name) == compute_units("local-task")
    assert compute_units("vulkan", "AMD Radeon") is None


def test_several_runs_are_fitted_as_one_at_each_kernels_median(tmp_path):
    """Three runs of one sweep: the fitted profile's times are NumPy's per-kernel medians of
    the three, its overheads those of the probes' medians; runs of another sweep are refused
    with the file named."""
    import numpy as np

    base = json.loads((ROOT / "agentc/cost/profiles/this-machine-cpu.json").read_text())
    base.pop("calibration")
    scales = [np.ones(len(base["kernels"])), np.full(len(base["kernels"]), 1.3),
              np.where(np.arange(len(base["kernels"])) % 2 == 0, 0.8, 1.1)]
    paths = []
    for i, scale in enumerate(scales):
        run = json.loads(json.dumps(base))
        for k, s in zip(run["kernels"], scale):
            for field in ("measured_s", "p10_s", "p90_s"):
                k[field] *= s
        for probe in run["overheads"]["probes"].values():
            probe["seconds"] *= 1.0 + i  # 1x, 2x, 3x: the median is the 2x run's
        paths.append(tmp_path / f"run{i}.json")
        paths[-1].write_text(json.dumps(run))
    out = tmp_path / "merged.json"
    r = bench("--fit", *paths, "--out", out, "--quiet")
    assert r.returncode == 0, r.stderr
    merged = json.loads(out.read_text())
    expected = np.median([[k["measured_s"] * s for k, s in zip(base["kernels"], scale)]
                          for scale in scales], axis=0)
    assert np.allclose([k["measured_s"] for k in merged["kernels"]], expected, rtol=1e-12)
    assert [run["file"] for run in merged["runs"]] == [str(p) for p in paths]
    probes = base["overheads"]["probes"]
    assert merged["overheads"]["call_s"] == 2 * probes["identity"]["seconds"]
    assert load_profile(out).mape_pct_holdout is not None

    other = json.loads(paths[1].read_text())
    other["kernels"] = other["kernels"][1:]
    paths[1].write_text(json.dumps(other))
    r = bench("--fit", *paths, "--quiet")
    assert r.returncode == 2
    assert f"{paths[1]}: kernels: not the sweep of {paths[0]}" in r.stderr


def test_llamacpp_is_built_for_the_listed_instruction_sets_without_amx():
    """The decode benchmark's llama.cpp: what the CPU lists, never AMX (listed by this
    machine's virtual CPU, which faults on its tile instructions)."""
    from agentc.bench.decode import llamacpp_cmake_args

    args = llamacpp_cmake_args({"avx", "avx2", "fma", "avx512f", "avx512_vnni", "amx_tile", "amx_int8"}).split()
    assert "-DGGML_NATIVE=OFF" in args and "-DGGML_AVX512_VNNI=ON" in args and "-DGGML_AVX2=ON" in args
    assert "-DGGML_AVX512_BF16=ON" not in args and "-DGGML_AMX_TILE=OFF" in args and "-DGGML_AMX_INT8=OFF" in args
    assert not any(a.startswith("-DGGML_AVX") for a in llamacpp_cmake_args({"sse4_2"}).split())
