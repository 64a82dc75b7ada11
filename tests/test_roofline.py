"""The roofline's counts from IR, its op classes, and pricing with and without a calibration
profile (agentc/cost/roofline.py, agentc/cost/profile.py). No device; one test
reads iree-compile's CPU configuration (no codegen)."""

import itertools
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
from torch_mlir import ir

from agentc.bench import mlir_text
from agentc.cost.catalog import load_catalog
from agentc.cost.fit import fit
from agentc.cost.profile import ColumnTile, ProfileError, ShapeRules, wave_factor
from agentc.cost.profile_json import load_profile
from agentc.cost.roofline import Work, func_work, kernel_estimate, kernel_time, runs_on


def work_of(text: str, name: str = "k") -> Work:
    with ir.Context():
        module = ir.Module.parse(text)
        func = next(op for op in module.body.operations
                    if str(op.attributes["sym_name"]).strip('"') == name)
        return func_work(func)


BATCH_MATMUL = """
func.func @k(%a: tensor<4x8x16xf32>, %b: tensor<4x16x32xf32>) -> tensor<4x8x32xf32> {
  %z = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<4x8x32xf32>
  %f = linalg.fill ins(%z : f32) outs(%e : tensor<4x8x32xf32>) -> tensor<4x8x32xf32>
  %r = linalg.batch_matmul ins(%a, %b : tensor<4x8x16xf32>, tensor<4x16x32xf32>)
         outs(%f : tensor<4x8x32xf32>) -> tensor<4x8x32xf32>
  return %r : tensor<4x8x32xf32>
}
"""


def test_matmul_counts_2mnk_flops_and_interface_bytes():
    w = work_of(mlir_text.matmul("k", 64, 128, 32, "f32"))
    assert w.flops == 2 * 64 * 128 * 32  # the zero fill costs no FLOPs
    assert w.bytes == 4 * (64 * 128 + 128 * 32 + 64 * 32)
    assert (w.op_class, w.dtype, w.dispatches) == ("matmul", "f32", 1)


def test_batch_matmul_counts_2bmnk_flops():
    w = work_of(BATCH_MATMUL)
    assert w.flops == 2 * 4 * 8 * 32 * 16
    assert w.bytes == 4 * (4 * 8 * 16 + 4 * 16 * 32 + 4 * 8 * 32)
    assert w.op_class == "matmul"


def test_generic_contraction_counts_its_loop_domain_not_its_largest_operand():
    # C[m,n] = A[m,k] W[n,k]^T as linalg.generic: the domain is m*n*k, two FLOPs per point.
    w = work_of(mlir_text.matmul_transposed_b("k", 16, 64, 8, "f32"))
    assert w.flops == 2 * 16 * 64 * 8
    assert w.op_class == "matmul"


def test_f16_casts_are_not_flops():
    w = work_of(mlir_text.matmul_transposed_b("k", 16, 64, 8, "f16"))
    assert w.flops == 2 * 16 * 64 * 8
    assert w.bytes == 2 * (16 * 64 + 8 * 64) + 4 * 16 * 8
    assert w.dtype == "f16"


def test_elementwise_generic_counts_one_flop_per_element():
    w = work_of(mlir_text.elementwise("k", "addf", 1000, "f32"))
    assert (w.flops, w.bytes, w.op_class) == (1000, 3 * 4 * 1000, "elementwise")


def test_row_sum_counts_one_flop_per_input_element():
    w = work_of(mlir_text.sum_rows("k", 12, 34, "f32"))
    assert (w.flops, w.bytes, w.op_class) == (12 * 34, 4 * (12 * 34 + 12), "reduction")


@pytest.mark.parametrize("text, expected", [
    (mlir_text.matvec("k", 96, 64, "f32"), "matvec"),  # y = W x, rows contiguous
    (mlir_text.matmul("k", 1, 64, 96, "f32"), "vecmat"),  # decode's x @ W, W strided
    (mlir_text.matmul_transposed_b("k", 1, 64, 96, "f32"), "vecmat_t"),  # x @ W^T, a matmul
    (mlir_text.matmul_transposed_b("k", 96, 64, 1, "f32"), "matvec"),  # A @ w^T: A's rows
])
def test_vector_products_are_classed_by_the_layout_they_stream(text, expected):
    w = work_of(text)
    assert w.flops == 2 * 64 * 96
    assert w.op_class == expected
    assert w.parallel == 96  # one output element per row of W


def test_parallel_extent_is_the_main_loop_nests_output():
    assert work_of(mlir_text.matmul("k", 32, 64, 96, "f32")).parallel == 32 * 96
    assert work_of(mlir_text.sum_rows("k", 7, 64, "f32")).parallel == 7
    row = work_of(mlir_text.sum_rows("k", 1, 4096, "f32"))
    assert (row.parallel, row.op_class) == (1, "serial_sum")  # one row: a chain of adds
    assert work_of(mlir_text.elementwise("k", "addf", 1000, "f32")).parallel == 1000


def test_exported_softmax_and_attention_get_their_own_classes():
    from agentc.bench import torch_kernels

    assert work_of(torch_kernels.softmax("k", 8, 16, "f32")).op_class == "softmax"
    assert work_of(torch_kernels.layernorm("k", 8, 16, "f32")).op_class == "layernorm"
    # One row: its sums are chains of adds, as in serial_sum.
    assert work_of(torch_kernels.softmax("k", 1, 4096, "f32")).op_class == "serial_softmax"
    assert work_of(torch_kernels.layernorm("k", 1, 768, "f32")).op_class == "serial_layernorm"
    attention = work_of(torch_kernels.attention("k", 2, 8, 4, "f32"))
    assert attention.op_class == "attention"
    assert attention.flops >= 2 * (2 * 2 * 8 * 8 * 4)  # QK^T and PV
    text, name = torch_kernels.topk(100, 3)
    assert work_of(text, name).op_class == "topk"


def test_greedy_sampling_is_a_reduction_and_argmax_rounds_are_topk():
    """Sampling is two reductions over the vocabulary; only repeated arg-reductions (top-k's
    rounds of argmax and masking) run at top-k's rate."""
    from agentc.bench import torch_kernels
    from agentc.models.export import export_function
    from agentc.models.sampling import greedy

    logits = np.zeros((1, 4096), np.float32)
    text = export_function(greedy, [logits], "sample", [], {"test": "greedy"})
    assert work_of(text, "sample").op_class == "reduction"
    text, name = torch_kernels.topk(4096, 3)
    assert work_of(text, name).op_class == "topk"


def test_without_a_profile_the_catalog_defaults_price_the_kernel():
    spec = load_catalog().devices["cpu"]
    w = Work(flops=1e9, bytes=1e6, dispatches=1, op_class="matmul")
    est = kernel_estimate(w, spec)
    assert est.source == "defaults"
    expected = (1e9 / (spec.peak_flops * spec.compute_efficiency) + spec.call_overhead_s
                + 0.5 * spec.dispatch_overhead_s)
    assert kernel_time(w, spec) == pytest.approx(expected)
    assert kernel_time(Work(1e9, 1e6, 1), spec) == pytest.approx(expected)  # 3-field Work


# --- calibration profiles ------------------------------------------------------------------

PEAK, BW = 1e11, 1e10
TRUE = {  # class: (compute efficiency, memory efficiency, overhead seconds)
    "matmul": (0.6, 0.9, 20e-6),
    "elementwise": (0.05, 0.7, 15e-6),
    "reduction": (0.1, 0.4, 25e-6),
}


DISPATCH_EXTRA = 3e-6  # each dispatch after a kernel's first


def synthetic_profile(noise: float, seed: int = 0, single: float = 0.0) -> dict:
    """Kernels of three classes; `single` is what a call of one dispatch pays on top."""
    rng = np.random.default_rng(seed)
    kernels = []
    for cls, (ec, em, o) in TRUE.items():
        for i, size in enumerate(np.geomspace(1e4, 1e8, 9)):
            flops = size * (40 if cls == "matmul" else 1)
            nbytes = size * (1 + i % 2)
            dispatches = 1 + 4 * (i % 3)
            t = (max(flops / (PEAK * ec), nbytes / (BW * em)) + o
                 + (dispatches - 1) * DISPATCH_EXTRA + (dispatches == 1) * single)
            kernels.append({"name": f"{cls}{i}", "op_class": cls, "dtype": "f32", "flops": flops,
                            "bytes": nbytes, "dispatches": dispatches,
                            "measured_s": t * (1 + noise * rng.standard_normal())})
    return {"schema": "agentc-profile/1", "target": "cpu",
            "spec": {"peak_flops": PEAK, "memory_bandwidth": BW}, "kernels": kernels,
            "overheads": {"dispatch_extra_s": DISPATCH_EXTRA, "single_dispatch_s": single}}


def write_fitted(tmp_path, data) -> str:
    path = tmp_path / "profile.json"
    path.write_text(json.dumps(dict(data, calibration=fit(data))))
    return str(path)


def test_a_noise_free_profile_recovers_its_efficiencies(tmp_path):
    profile = load_profile(write_fitted(tmp_path, synthetic_profile(noise=0.0)))
    assert profile.mape_pct_holdout < 1.0
    assert profile.dispatch_extra_s == DISPATCH_EXTRA
    for cls, (ec, em, o) in TRUE.items():
        cal, key = profile.calibration(cls)
        assert key == cls
        assert cal.overhead_s == pytest.approx(o, rel=0.1)
        # Only the roofs that bind somewhere in the sweep are identifiable.
        if cls != "reduction":
            assert cal.compute_efficiency == pytest.approx(ec, rel=0.05)
        if cls != "matmul":
            assert cal.memory_efficiency == pytest.approx(em, rel=0.05)


def test_chain_probes_give_each_further_dispatch_and_a_single_dispatch_calls_surcharge():
    """As on the H200: chains of 8 and 32 dispatches lie on 46 us + 3.3 us per further
    dispatch, the chain of 1 at 130 us, 84 us above that line; on a CPU-like device the
    chain of 1 lies on the line and nothing is charged."""
    from agentc.bench.run_artifacts import overheads

    def probes(one, floor, extra):
        chains = {n: floor + (n - 1) * extra for n in (8, 32)}
        return {"identity": {"seconds": 5e-6}, "add_f32_1": {"seconds": 140e-6},
                "chain_f32_1x16": {"seconds": one},
                **{f"chain_f32_{n}x16": {"seconds": t} for n, t in chains.items()}}

    gpu = overheads(probes(130e-6, 46e-6, 3.3e-6))
    assert gpu["dispatch_extra_s"] == pytest.approx(3.3e-6)
    assert gpu["single_dispatch_s"] == pytest.approx(84e-6)
    assert gpu["dispatch_s"] == pytest.approx(135e-6)
    cpu = overheads(probes(60e-6, 62e-6, 0.0))
    assert cpu["dispatch_extra_s"] == pytest.approx(0.0, abs=1e-12)
    assert cpu["single_dispatch_s"] == 0.0


def test_a_single_dispatch_calls_surcharge_is_charged_apart_from_the_class(tmp_path):
    """A class mixing one-dispatch calls (surcharged) with calls of several: with the
    measured surcharge the fit recovers the times; the class's overhead alone cannot."""
    single = 80e-6
    data = synthetic_profile(noise=0.0, single=single)
    profile = load_profile(write_fitted(tmp_path, data))
    assert profile.mape_pct_all < 1.0
    one = profile.predict(1e6, 1e6, "elementwise", dispatches=1)[0]
    five = profile.predict(1e6, 1e6, "elementwise", dispatches=5)[0]
    assert one - five == pytest.approx(single - 4 * DISPATCH_EXTRA, rel=0.02)
    data["overheads"]["single_dispatch_s"] = 0.0
    assert fit(data)["mape_pct_all"] > 5.0


def test_kernel_time_with_a_profile_reproduces_its_measurements_within_its_stated_error(tmp_path):
    path = write_fitted(tmp_path, synthetic_profile(noise=0.05))
    profile = load_profile(path)
    spec = load_catalog().devices["cpu"]
    errors = []
    for k in profile.data["kernels"]:
        w = Work(k["flops"], k["bytes"], k["dispatches"], k["op_class"], k["dtype"])
        est = kernel_estimate(w, spec, profile)
        assert est.source == "profile:profile.json"
        assert est.calibration.split("@")[0] == k["op_class"]
        assert kernel_time(w, spec, profile) == est.seconds
        errors.append(abs(est.seconds - k["measured_s"]) / k["measured_s"])
    assert 100 * np.mean(errors) == pytest.approx(profile.mape_pct_all, abs=1e-3)
    assert profile.mape_pct_all < 10 and profile.mape_pct_holdout < 10


def test_a_one_row_class_the_profile_lacks_is_priced_as_its_many_row_class():
    from agentc.cost.profile import calibration_for

    fitted = {"softmax": None, "serial_sum": None, "all": None}
    assert calibration_for(fitted, "serial_softmax", "f32", 1e6) == "softmax"
    assert calibration_for(fitted, "serial_layernorm", "f32", 1e6) == "all"
    assert calibration_for(fitted, "serial_sum", "f32", 1e6) == "serial_sum"


def test_an_unknown_class_falls_back_to_the_fit_over_all_classes(tmp_path):
    profile = load_profile(write_fitted(tmp_path, synthetic_profile(noise=0.0)))
    _, key = profile.calibration("topk", "f16")
    assert key == "all"


@pytest.mark.parametrize("make, columns, aligned", [
    (lambda: torch_linear(1, 384, 1000), 1000, False),  # a search over 1,000 passages
    (lambda: torch_linear(1, 384, 1024), 1024, True),
    (lambda: torch_linear(128, 384, 1000), 1000, False),
    (lambda: torch_linear(100, 384, 384), 384, True),  # rows are not judged, only columns
    (lambda: mlir_text.matmul("k", 1, 384, 1000, "f32"), 1000, False),  # x @ W
    (lambda: mlir_text.matvec("k", 1000, 384, "f32"), 1000, False),  # W x: 1,000 outputs
    (lambda: mlir_text.matmul("k", 32, 32, 32, "f32"), 32, True),  # one tile holds them all
])
def test_a_gemms_output_columns_off_the_tile_make_it_ragged(make, columns, aligned):
    text = make()
    w = work_of(*text) if isinstance(text, tuple) else work_of(text)
    assert w.columns == columns
    assert ColumnTile(64).ragged(w.columns) is not aligned


def configuration(columns: int, backend: str) -> str:
    """iree-compile's configuration of x[1,384] @ W[columns,384]^T for `backend`."""
    from agentc.bench.dispatch_grid import configuration as listing

    return listing(torch_linear(1, 384, columns)[0], backend)


@pytest.mark.parametrize("columns, tile, is_ragged", [
    (1000, 50, True), (1008, 63, False), (1056, 48, False), (1100, 55, True),
    (1200, 60, False), (3000, 60, False), (5000, 50, True), (1024, 64, False)])
def test_the_cpu_column_tiling_is_the_one_iree_chooses(columns, tile, is_ragged):
    """IREE's CPU codegen distributes a linear layer's output columns in tiles of the largest
    divisor up to 64 (read from iree-compile's own configuration); a tile whose last
    16-lane vector is under half full is ragged (1,000 and 1,100 columns measured 1.5-2x
    slower per FLOP, 1,008, 1,056 and 1,200 not: experiments/cost-model/this-machine/ragged-columns.json)."""
    distributed = {int(m.split(",")[-2])
                   for m in re.findall(r"distribution = \[([^\]]*)\]", configuration(columns, "llvm-cpu"))}
    assert distributed == {tile}
    rule = ColumnTile(64, 16)
    assert rule.span(columns) == tile
    assert rule.ragged(columns) is is_ragged


@pytest.mark.parametrize("columns", [1000, 1008, 1024, 1056, 1088])
def test_the_spirv_column_tiling_is_the_one_iree_chooses(columns):
    """IREE's SPIR-V codegen vectorizes a one-row linear layer only over a multiple of 64
    columns; off it, each invocation computes one scalar column (`BaseDistribute`, 3-7x
    slower per FLOP on lavapipe: experiments/cost-model/this-machine/ragged-columns.json)."""
    pipelines = set(re.findall(r"spirv_pipeline<(\w+)>", configuration(columns, "vulkan-spirv")))
    assert pipelines == ({"BaseDistribute"} if ColumnTile(64).ragged(columns) else {"BaseVectorize"})


def test_only_gemm_like_kernels_are_judged_ragged():
    from agentc.bench import torch_kernels

    assert work_of(torch_kernels.softmax("k", 8, 1000, "f32")).columns == 0
    assert work_of(mlir_text.elementwise("k", "addf", 1000, "f32")).columns == 0


def torch_linear(m: int, k: int, n: int) -> tuple[str, str]:
    from agentc.bench import torch_kernels

    return torch_kernels.linear("k", m, k, n, "f32"), "k"


def test_ragged_gemms_get_a_calibration_of_their_own(tmp_path):
    """Ragged GEMMs 4x slower per FLOP than aligned ones: the fit prices them apart, and a
    class without ragged kernels prices a ragged one as an aligned one."""
    data = synthetic_profile(noise=0.0)
    ragged = [dict(k, name=k["name"] + "r", columns=1000,
                   measured_s=(k["measured_s"] - 25e-6 - (k["dispatches"] - 1) * DISPATCH_EXTRA) * 4
                   + 25e-6 + (k["dispatches"] - 1) * DISPATCH_EXTRA)
              for k in data["kernels"] if k["op_class"] == "matmul" and k["flops"] > 1e7]
    data["kernels"] += ragged
    profile = load_profile(write_fitted(tmp_path, data))
    for k in ragged:
        seconds, key = profile.predict(k["flops"], k["bytes"], "matmul", dispatches=k["dispatches"],
                                       columns=1000)
        assert key == "matmul.ragged"
        assert seconds == pytest.approx(k["measured_s"], rel=0.05)
        assert profile.predict(k["flops"], k["bytes"], "matmul", dispatches=k["dispatches"])[0] \
            < 0.5 * k["measured_s"]
    assert profile.rules == ShapeRules(ColumnTile(64))  # the GPU tiling: no backend named
    assert profile.predict(1e6, 1e6, "matmul", columns=1024)[1] == "matmul"
    assert profile.predict(1e6, 1e6, "elementwise", columns=1000)[1] == "elementwise"
    spec = load_catalog().devices["cpu"]
    k = ragged[-1]
    w = Work(k["flops"], k["bytes"], k["dispatches"], "matmul", columns=1000)
    assert kernel_estimate(w, spec, profile).calibration == "matmul.ragged"


@pytest.mark.parametrize("op_class, dtype, columns, variant", [
    ("vecmat", "f32", 512, ".aliased"),  # rows 2 KiB apart
    ("vecmat", "f32", 3072, ".aliased"),  # 12 KiB: a multiple, not a power of two
    ("vecmat", "f32", 576, ""),
    ("vecmat", "f32", 1152, ""),  # 4.5 KiB
    ("vecmat", "f16", 1024, ".aliased"),
    ("vecmat", "f16", 512, ""),  # 1 KiB
    ("vecmat_t", "f32", 4096, ""),  # x @ W^T reads each weight row end to end
    ("matvec", "f32", 4096, ""),
    ("vecmat", "f32", 1000, ".ragged"),  # ragged first: such columns never alias
])
def test_x_at_w_aliases_where_its_weight_rows_are_a_multiple_of_the_period_apart(
        op_class, dtype, columns, variant):
    assert ShapeRules(ColumnTile(64, 16), 2048).variant(op_class, dtype, columns) == variant
    assert ShapeRules(ColumnTile(64, 16)).variant(op_class, dtype, columns) == \
        ("" if variant == ".aliased" else variant)


def aliasing_profile(slowdown: float) -> dict:
    """One-row x @ W on the CPU backend, each kernel's W streamed `slowdown` times slower
    where its rows are 2 KiB apart (1,024 and 2,048 columns), plus the synthetic classes."""
    data = synthetic_profile(noise=0.0)
    data["iree_target"] = "llvm-cpu"
    for i, (k, n) in enumerate(itertools.product((256, 512, 1024, 2048, 4096), (576, 1024, 1152, 2048))):
        em = 0.5 / (slowdown if n * 4 % 2048 == 0 else 1.0)
        flops, nbytes = 2.0 * k * n, 4.0 * k * n
        t = max(flops / (PEAK * 0.3), nbytes / (BW * em)) + 10e-6
        data["kernels"].append({"name": f"gemm_f32_1x{k}x{n}", "op": "gemm", "op_class": "vecmat",
                                "dtype": "f32", "flops": flops, "bytes": nbytes, "dispatches": 1,
                                "columns": n, "measured_s": t})
    return data


def test_aliased_x_at_w_gets_a_calibration_of_its_own(tmp_path):
    """x @ W streamed 2x slower at rows 2 KiB apart: the fit takes the CPU backend's alias
    period and prices those apart, held-out ones included; other products keep `vecmat`."""
    data = aliasing_profile(slowdown=2.0)
    profile = load_profile(write_fitted(tmp_path, data))
    assert profile.rules.alias_bytes == 2048
    assert profile.mape_pct_holdout < 1.0
    for k in data["kernels"]:
        if k["op_class"] == "vecmat":
            seconds, key = profile.predict(k["flops"], k["bytes"], "vecmat", columns=k["columns"])
            assert key == ("vecmat.aliased" if k["columns"] in (1024, 2048) else "vecmat")
            assert seconds == pytest.approx(k["measured_s"], rel=0.02)
    assert profile.predict(1e6, 1e6, "vecmat_t", columns=1024)[1] == "all"  # never aliased
    plain = load_profile(write_fitted(tmp_path, aliasing_profile(slowdown=1.0)))
    assert plain.rules.alias_bytes is None  # no rule where it does not lower the error


def test_held_out_kernels_are_every_third_of_each_class(tmp_path):
    data = synthetic_profile(noise=0.0)
    held = fit(data)["holdout"]
    assert sum(held) == 3 * 3
    assert [i % 9 for i, h in enumerate(held) if h] == [2, 5, 8] * 3


def test_held_out_kernels_follow_the_sweep_not_the_classes():
    """Reclassifying kernels must not change which ones a fit is judged on."""
    data = synthetic_profile(noise=0.0)
    for k in data["kernels"]:
        k["op"] = k["op_class"]
    before = fit(data)["holdout"]
    for k in data["kernels"]:
        k["op_class"] = "elementwise"
    assert fit(data)["holdout"] == before


def test_a_class_whose_kernels_are_all_held_out_is_judged_as_the_profile_prices_it(tmp_path):
    """Such a kernel is scored with the calibration `Profile.calibration` would pick: its
    class without the dtype where that was fitted, else the fit over all classes."""
    data = synthetic_profile(noise=0.0)
    for k in data["kernels"]:
        k["op"] = k["op_class"]
    data["kernels"][2]["op_class"] = "topk"  # the third matmul: held out
    # three f16 kernels of one op; the third, held out, is the only matmul.f16
    mix = [dict(data["kernels"][i], op="mix", dtype="f16", op_class=c)
           for i, c in ((3, "elementwise"), (4, "elementwise"), (6, "matmul"))]
    data["kernels"] += mix
    last = len(data["kernels"]) - 1
    cal = fit(data)
    assert cal["holdout"][2] and cal["keys"][2] == "all" and "topk" not in cal["classes"]
    assert cal["holdout"][last] and cal["keys"][last].split("@")[0] == "matmul"
    assert "matmul.f16" not in cal["classes"]
    path = tmp_path / "p.json"
    path.write_text(json.dumps(dict(data, calibration=cal)))
    profile = load_profile(path)
    for i in (2, last):
        k = data["kernels"][i]
        seconds, key = profile.predict(k["flops"], k["bytes"], k["op_class"], k["dtype"],
                                       k["dispatches"])
        assert key == cal["keys"][i] and seconds == pytest.approx(cal["predicted_s"][i], rel=1e-9)


def tiered_profile() -> dict:
    """Streaming kernels and a memory-bound class whose bandwidth drops 4x beyond 2.5 MB
    (between two fitted sizes: the curve interpolates between its measured points). Two
    streaming kernels of each size, as the sweep's add and mul."""
    kernels = []
    for cls, eff in (("elementwise", 0.7), ("elementwise", 0.7), ("reduction", 0.4)):
        for i, nbytes in enumerate(np.geomspace(1e4, 1e8, 12)):
            bw = BW if nbytes <= 2.5e6 else BW / 4
            kernels.append({"name": f"{cls}{len(kernels)}", "op_class": cls, "dtype": "f32",
                            "flops": nbytes, "bytes": nbytes, "dispatches": 1,
                            "measured_s": 15e-6 + nbytes / (bw * eff)})
    return {"schema": "agentc-profile/1", "target": "cpu",
            "spec": {"peak_flops": PEAK, "memory_bandwidth": BW}, "kernels": kernels}


def test_the_memory_curve_prices_working_sets_beyond_the_cache(tmp_path):
    """One efficiency per class prices both sides of the cache once bytes beyond it are
    charged at the slowdown the streaming kernels measured (no per-class split allowed)."""
    data = tiered_profile()
    cal = fit(data, min_points=100)
    curve = cal["memory_curve"]
    assert curve["slowdown"][-1] == pytest.approx(4.0, rel=0.1)
    assert cal["mape_pct_holdout"] < 1
    path = tmp_path / "tiered.json"
    path.write_text(json.dumps(dict(data, calibration=cal)))
    profile = load_profile(path)
    small, large = profile.memory_curve.slowdown(1e5), profile.memory_curve.slowdown(1e8)
    assert small == pytest.approx(1.0, abs=0.05) and large == pytest.approx(4.0, rel=0.1)
    seconds, _ = profile.predict(5e7, 5e7, "reduction")
    assert seconds == pytest.approx(15e-6 + 5e7 / (BW / 4 * 0.4), rel=0.1)


def test_one_slow_small_streaming_kernel_does_not_flatten_the_memory_curve():
    """A small call that woke a sleeping worker (tens of microseconds more) streams slower
    than larger ones; the curve must still show the 4x beyond the cache."""
    data = tiered_profile()
    fitted = [k for k in data["kernels"] if k["op_class"] == "elementwise"]
    small = next(k for k in fitted if 2 * 15e-6 < k["measured_s"] and k["bytes"] < 1e6)
    small["measured_s"] *= 3
    curve = fit(data, min_points=100)["memory_curve"]
    assert curve["slowdown"][-1] == pytest.approx(4.0, rel=0.1)


def test_a_chain_of_dispatches_streams_at_one_dispatchs_working_set(tmp_path):
    """A kernel of d dispatches over 5e7 bytes streams each 5e7/d at that size's rate: in
    the cache when the share fits, at the slower DRAM rate when it does not. The fit prices
    chains whose times follow it within 10%, and `predict` charges it."""
    data = tiered_profile()
    for i, d in enumerate((2, 4, 8, 50, 100, 200)):  # shares 25 MB .. 0.25 MB
        bw = BW if 5e7 / d <= 2.5e6 else BW / 4
        data["kernels"].append({"name": f"chain{i}", "op_class": "chain", "dtype": "f32",
                                "flops": 5e7, "bytes": 5e7, "dispatches": d,
                                "measured_s": 15e-6 + 5e7 / (bw * 0.4)})
    cal = fit(data, min_points=100)
    chain = [i for i, k in enumerate(data["kernels"]) if k["op_class"] == "chain"]
    assert all(abs(cal["predicted_s"][i] / data["kernels"][i]["measured_s"] - 1) < 0.1
               for i in chain)
    path = tmp_path / "chain.json"
    path.write_text(json.dumps(dict(data, calibration=cal)))
    profile = load_profile(path)
    whole, _ = profile.predict(5e7, 5e7, "chain", dispatches=1)
    shared, _ = profile.predict(5e7, 5e7, "chain", dispatches=100)
    assert whole / shared == pytest.approx(4.0, rel=0.15)


def test_without_streaming_kernels_the_curve_is_flat():
    data = synthetic_profile(noise=0.0)
    data["kernels"] = [k for k in data["kernels"] if k["op_class"] != "elementwise"]
    assert fit(data)["memory_curve"] == {"bytes": [], "slowdown": []}


def malformed(tmp_path, mutate) -> str:
    data = json.loads(Path(write_fitted(tmp_path, synthetic_profile(noise=0.0))).read_text())
    mutate(data)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    return str(path)


@pytest.mark.parametrize("mutate, field", [
    (lambda d: d["kernels"][3].pop("measured_s"), "kernels[3].measured_s"),
    (lambda d: d["kernels"][0].update(flops="many"), "kernels[0].flops"),
    (lambda d: d["spec"].pop("peak_flops"), "spec.peak_flops"),
    (lambda d: d.pop("calibration"), "calibration"),
    (lambda d: d["calibration"]["classes"]["matmul"].update(memory_efficiency=-1),
     "calibration.classes.matmul.memory_efficiency"),
    (lambda d: d.update(target=3), "target"),
    (lambda d: d["calibration"].update(memory_curve={"bytes": [1e6, 1e7], "slowdown": [1.0]}),
     "calibration.memory_curve"),
    (lambda d: d["calibration"].update(memory_curve={"bytes": [1e7, 1e6], "slowdown": [1, 2]}),
     "calibration.memory_curve.bytes"),
    (lambda d: d["calibration"].update(memory_curve={"bytes": [1e6], "slowdown": [0]}),
     "calibration.memory_curve.slowdown[0]"),
    (lambda d: d["kernels"][2].update(grid=[[64, -1]]), "kernels[2].grid"),
    (lambda d: d["kernels"][2].update(grid=[64, 3]), "kernels[2].grid"),
    (lambda d: d.update(device={"compute_units": 0}), "device.compute_units"),
    (lambda d: d["calibration"].update(slots="many"), "calibration.slots"),
    (lambda d: d["calibration"]["classes"]["matmul"].update(waves=[[4096, 0]]),
     "calibration.classes.matmul.waves"),
])
def test_a_malformed_profile_names_its_file_and_field(tmp_path, mutate, field):
    path = malformed(tmp_path, mutate)
    with pytest.raises(ProfileError) as e:
        load_profile(path)
    assert str(e.value).startswith(f"{path}: {field}:")


def test_a_profile_that_is_not_json_names_its_file(tmp_path):
    path = tmp_path / "p.json"
    path.write_text("{not json")
    with pytest.raises(ProfileError, match=f"{path}: not valid JSON"):
        load_profile(path)
    with pytest.raises(ProfileError, match="cannot read profile"):
        load_profile(tmp_path / "missing.json")


# --- waves of workgroups -----------------------------------------------------------------

SLOTS = 132  # compute units of the synthetic GPU


def waved_profile(waves: bool) -> dict:
    """GEMMs of 2 MNK FLOPs tiled 32x128 per workgroup on a GPU of SLOTS compute units:
    with `waves`, a dispatch takes as long as its whole waves (the H200's f32 matmuls)."""
    kernels = []
    shapes = [(m, k, n) for m in (1, 32, 128, 512) for k in (256, 1024, 4096) for n in (384, 1536, 6144)]
    for m, k, n in shapes:
        flops, workgroups = 2.0 * m * n * k, -(-m // 32) * -(-n // 128)
        charged = flops * (math.ceil(workgroups / SLOTS) * SLOTS / workgroups if waves else 1.0)
        nbytes = 4.0 * (m * k + k * n + m * n)
        t = max(charged / (PEAK * 0.5), nbytes / (BW * 0.8)) + 20e-6
        kernels.append({"name": f"gemm_{m}x{k}x{n}", "op": "gemm", "op_class": "matmul",
                        "dtype": "f32", "flops": flops, "bytes": nbytes, "dispatches": 1,
                        "parallel": m * n,
                        "grid": [[m * n * k, workgroups]], "measured_s": t})
    return {"schema": "agentc-profile/1", "target": "cuda", "device": {"compute_units": SLOTS},
            "spec": {"peak_flops": PEAK, "memory_bandwidth": BW}, "kernels": kernels}


def test_wave_factor_counts_whole_waves_of_the_largest_dispatch():
    assert wave_factor([[10**6, 24]], 132) == pytest.approx(132 / 24)
    assert wave_factor([[10**6, 264]], 132) == 1.0
    assert wave_factor([[10**6, 133]], 132) == pytest.approx(264 / 133)
    assert wave_factor([[10, 1], [10**6, 66]], 132) == pytest.approx(2.0)  # the larger dispatch
    assert wave_factor([[10**6, 24]], None) == 1.0
    assert wave_factor(None, 132) == 1.0
    assert wave_factor([[10**6, 0]], 132) == 1.0  # a dynamic count: unknown


def test_the_fit_charges_waves_where_the_device_runs_in_waves(tmp_path):
    data = waved_profile(waves=True)
    result = fit(data)
    assert result["slots"] == SLOTS
    assert result["mape_pct_holdout"] < 1.0
    assert fit(dict(data, device={}))["mape_pct_holdout"] > 20.0  # the roofline alone misses
    profile = load_profile(write_fitted(tmp_path, data))
    m, k, n = 128, 1024, 1536
    flops, nbytes = 2.0 * m * n * k, 4.0 * (m * k + k * n + m * n)
    known, _ = profile.predict(flops, nbytes, "matmul", grid=[[m * n * k, 48]])
    assert known == pytest.approx(flops * SLOTS / 48 / (PEAK * 0.5) + 20e-6, rel=0.01)
    # Without a grid, the fitted kernel of the nearest output size (128 x 1536, 48
    # workgroups) stands for its waves.
    inferred, _ = profile.predict(flops, nbytes, "matmul", parallel=130 * 1500)
    assert inferred == pytest.approx(known)
    assert profile.predict(flops, nbytes, "matmul")[0] > 10 * known  # one row: one wave each


def test_the_fit_leaves_waves_out_where_they_do_not_help():
    assert fit(waved_profile(waves=False))["slots"] is None


def test_a_dispatchs_loop_over_one_row_is_what_a_loop_limit_judges():
    """One-row reductions loop over the row in one invocation on IREE's baseline SPIR-V; a
    softmax's two reductions and its scaling pass share its one dispatch. `runs_on` keeps a
    kernel off a device whose loops stop earlier (lavapipe: 65,535, as in the catalog)."""
    from agentc.bench import torch_kernels

    assert work_of(mlir_text.sum_rows("k", 1, 131072, "f32")).row_loop == 131072
    assert work_of(mlir_text.sum_rows("k", 4, 131072, "f32")).row_loop == 0  # 4 rows: parallel
    assert work_of(torch_kernels.softmax("k", 1, 30000, "f32")).row_loop == 3 * 30000
    lavapipe = load_catalog().devices["vulkan"]
    assert lavapipe.max_loop_iterations == 65535
    assert runs_on(work_of(mlir_text.sum_rows("k", 1, 65535, "f32")), lavapipe)
    assert not runs_on(work_of(mlir_text.sum_rows("k", 1, 65536, "f32")), lavapipe)
    assert not runs_on(work_of(torch_kernels.softmax("k", 1, 30000, "f32")), lavapipe)
    assert runs_on(work_of(torch_kernels.softmax("k", 1, 20000, "f32")), lavapipe)
    assert runs_on(work_of(mlir_text.sum_rows("k", 1, 1 << 22, "f32")), load_catalog().devices["cpu"])


def test_a_malformed_loop_limit_names_file_and_field(tmp_path):
    from agentc.cost.catalog import CATALOG_PATH, CatalogError

    path = tmp_path / "catalog.yaml"
    path.write_text(CATALOG_PATH.read_text().replace("max_loop_iterations: 65535",
                                                     "max_loop_iterations: lots"))
    with pytest.raises(CatalogError, match=r"catalog.yaml: devices.vulkan.max_loop_iterations"):
        load_catalog(path)


def test_the_sweeps_row_loop_from_a_shape_is_the_irs():
    """The bench leaves kernels out by the count from a case's shape; placement judges by
    the IR's. They must agree, or the sweep would time kernels placement refuses."""
    from agentc.bench.sweep import FULL

    for case in FULL:
        if case.op in ("sum_rows", "softmax", "sample", "topk"):
            assert work_of(*case.build()).row_loop == case.row_loop(), case.name
