"""The hardware catalog (agentc/cost/hardware.yaml): every entry loads with its sources, the
datasheet relations that must hold do hold, and malformed files name the file and field."""

import copy

import pytest
import yaml

from agentc.cost.hardware import HARDWARE_PATH, HardwareError, load_hardware

REQUIRED_IDS = [
    "this-machine-cpu",
    "amd-epyc-9654",
    "nvidia-t4",
    "nvidia-l4",
    "nvidia-a10g",
    "nvidia-a100-40gb-sxm",
    "nvidia-a100-80gb-sxm",
    "nvidia-h100-sxm",
    "nvidia-h200-sxm",
    "nvidia-b200",
    "amd-mi300x",
    "intel-gaudi-3",
    "lavapipe",
]


@pytest.fixture(scope="module")
def hw():
    return load_hardware()


def test_every_entry_loads_with_dated_sources(hw):
    assert hw
    for dev, spec in hw.items():
        assert spec.sources, dev
        for s in spec.sources:
            assert s.url.strip() and s.date.strip() and s.what.strip(), (dev, s)
        assert spec.peak("fp32") > 0 and spec.memory_bandwidth > 0 and spec.memory_bytes > 0


def test_required_devices_present(hw):
    assert [d for d in REQUIRED_IDS if d not in hw] == []


def test_runtimes(hw):
    assert hw["this-machine-cpu"].runtime == "cpu"
    assert hw["lavapipe"].runtime == "vulkan"
    assert hw["amd-mi300x"].runtime is None and hw["intel-gaudi-3"].runtime is None
    assert {hw[d].runtime for d in REQUIRED_IDS if d.startswith("nvidia-")} == {"cuda"}


def test_datasheet_relations(hw):
    assert hw["nvidia-h200-sxm"].memory_bytes > hw["nvidia-h100-sxm"].memory_bytes
    assert hw["nvidia-h100-sxm"].peak("fp16") > hw["nvidia-a100-80gb-sxm"].peak("fp16")
    assert hw["nvidia-b200"].memory_bandwidth > hw["nvidia-h200-sxm"].memory_bandwidth
    assert hw["nvidia-a100-80gb-sxm"].memory_bandwidth > hw["nvidia-a100-40gb-sxm"].memory_bandwidth
    gpus = [spec for spec in hw.values() if spec.kind == "gpu"]
    assert len(gpus) >= 9
    for spec in gpus:
        assert spec.peak("fp16") >= spec.peak("fp32"), spec.id


def test_peak_and_cost_helpers(hw):
    with pytest.raises(HardwareError, match=r"nvidia-t4 has no 'bf16' peak.*fp32, fp16, int8"):
        hw["nvidia-t4"].peak("bf16")
    assert hw["nvidia-h100-sxm"].cost_per_s() == pytest.approx(6.88 / 3600)
    assert hw["this-machine-cpu"].cost_per_s() is None
    with pytest.raises(TypeError):
        hw["nvidia-t4"].peak_flops["fp32"] = 1.0  # read-only


def test_shipped_numbers_are_yaml_floats():
    # `1.0e11` is a string to PyYAML (YAML 1.1); the file must spell floats as 1.0e+11.
    for dev, d in yaml.safe_load(HARDWARE_PATH.read_text())["devices"].items():
        for f in ("memory_bandwidth", "memory_bytes"):
            assert isinstance(d[f], float), (dev, f)
        assert all(isinstance(v, float) for v in d["peak_flops"].values()), dev


BASE = {
    "vendor": "Acme",
    "kind": "gpu",
    "peak_flops": {"fp32": 1.0e12, "fp16": 2.0e12},
    "memory_bandwidth": 1.0e11,
    "memory_bytes": 8.0e9,
    "runtime": "cuda",
    "sources": [{"what": "datasheet", "url": "https://example.com/ds.pdf", "date": "2026-01-01"}],
}


def _write(tmp_path, mutate):
    dev = copy.deepcopy(BASE)
    mutate(dev)
    path = tmp_path / "hw.yaml"
    path.write_text(yaml.safe_dump({"devices": {"dev-x": dev}}))
    return path


def _pop(*keys):
    def f(d):
        for k in keys[:-1]:
            d = d[k]
        del d[keys[-1]]

    return f


def _set(value, *keys):
    def f(d):
        for k in keys[:-1]:
            d = d[k]
        d[keys[-1]] = value

    return f


MISSING = "expected a value (required field), found nothing"
MALFORMED = [
    ("vendor", _pop("vendor"), MISSING),
    ("kind", _pop("kind"), MISSING),
    ("peak_flops.fp32", _pop("peak_flops", "fp32"), MISSING),
    ("memory_bandwidth", _pop("memory_bandwidth"), MISSING),
    ("memory_bytes", _pop("memory_bytes"), MISSING),
    ("sources", _pop("sources"), MISSING),
    (
        "memory_bytes",
        _set("8 GB", "memory_bytes"),
        "expected a number (write floats as 1.0e+11), found '8 GB'",
    ),
    ("peak_flops.fp16", _set(True, "peak_flops", "fp16"), "expected a number"),
    ("peak_flops.fp16", _set(0.0, "peak_flops", "fp16"), "expected a number > 0, found 0.0"),
    ("memory_bandwidth", _set(-1.0, "memory_bandwidth"), "expected a number > 0, found -1.0"),
    ("tdp_w", _set(0, "tdp_w"), "expected a number > 0, found 0"),
    (
        "price.on_demand_per_hour",
        _set({"on_demand_per_hour": -2.0}, "price"),
        "expected a number > 0",
    ),
    (
        "peak_flops.fp4",
        _set(1.0e15, "peak_flops", "fp4"),
        "expected a key among fp32, tf32, fp16, bf16, int8, fp8, found 'fp4'",
    ),
    ("runtime", _set("rocm", "runtime"), "expected one of cpu, cuda, vulkan or null, found 'rocm'"),
    ("kind", _set("tpu", "kind"), "expected one of cpu, gpu, accelerator, found 'tpu'"),
    ("sources", _set([], "sources"), "expected a non-empty list of {what, url, date}, found []"),
    ("sources[0].url", _pop("sources", 0, "url"), MISSING),
    ("sources[0].date", _set("", "sources", 0, "date"), "expected a non-empty string, found ''"),
    (
        "host_link.bandwidth",
        _set({"kind": "pcie4x16", "bandwidth": "fast"}, "host_link"),
        "expected a number",
    ),
    ("tdp", _set(700.0, "tdp"), "expected a key among vendor, kind"),
]


@pytest.mark.parametrize(
    "field,mutate,message", MALFORMED, ids=[f"{m[0]}:{i}" for i, m in enumerate(MALFORMED)]
)
def test_malformed_file_names_file_and_field(tmp_path, field, mutate, message):
    path = _write(tmp_path, mutate)
    with pytest.raises(HardwareError) as err:
        load_hardware(path)
    text = str(err.value)
    assert text.startswith(f"{path}: devices.dev-x.{field}: "), text
    assert message in text, text


def test_yaml11_exponent_without_sign_is_caught(tmp_path):
    # Written by hand: PyYAML reads an unsigned exponent as a string, the loader must say so.
    text = yaml.safe_dump({"devices": {"dev-x": BASE}}).replace(
        "memory_bandwidth: 100000000000.0", "memory_bandwidth: 1.0e11"
    )
    assert "memory_bandwidth: 1.0e11" in text
    path = tmp_path / "hw.yaml"
    path.write_text(text)
    with pytest.raises(
        HardwareError,
        match=r"devices\.dev-x\.memory_bandwidth: expected a number .*found '1\.0e11'",
    ):
        load_hardware(path)


def test_the_base_fixture_is_valid(tmp_path):
    spec = load_hardware(_write(tmp_path, lambda d: None))["dev-x"]
    assert spec.peak("fp16") == 2.0e12 and spec.host_link is None


def test_unreadable_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("devices: [unclosed")
    with pytest.raises(HardwareError, match=rf"^{bad}: cannot read hardware catalog"):
        load_hardware(bad)
    empty = tmp_path / "empty.yaml"
    empty.write_text("other: 1\n")
    with pytest.raises(HardwareError, match=rf"^{empty}: devices: expected a mapping"):
        load_hardware(empty)


def _specs(tmp_path, types):
    from agentc.placement.cluster_file import load_cluster

    (tmp_path / "c.yaml").write_text("devices:\n" + "".join(f"  - {{type: {t}, cost_per_hour: 1.0}}\n" for t in types))
    return {d.type: d.spec for d in load_cluster(tmp_path / "c.yaml").devices.values()}


def test_a_call_streaming_beyond_the_caches_moves_its_bytes_at_no_more_than_the_dram_rate(tmp_path):
    """A SmolLM2 decode step (562 MB of f32 weights, 392 dispatches): on each GPU at least
    its bytes over the datasheet bandwidth, whatever a profile fitted on cached kernels says;
    a small kernel is the profile's alone."""
    from agentc.cost.catalog import device_profile
    from agentc.cost.roofline import STREAM_BYTES, Work, kernel_time

    hw = load_hardware()
    types = ["nvidia-t4", "nvidia-a100-80gb-sxm", "nvidia-b200"]
    specs = _specs(tmp_path, types)
    step = Work(flops=2.9e8, bytes=5.62e8, dispatches=392, op_class="vecmat_t", parallel=49152, row_loop=576,
                columns=49152)
    times = {t: kernel_time(step, s, device_profile(s)) for t, s in specs.items()}
    for t in types:
        assert times[t] >= step.bytes / hw[t].memory_bandwidth
    assert times["nvidia-t4"] - times["nvidia-b200"] >= step.bytes / hw["nvidia-t4"].memory_bandwidth - \
        step.bytes / hw["nvidia-b200"].memory_bandwidth - 1e-9
    small = Work(flops=2.9e6, bytes=STREAM_BYTES / 8, dispatches=4, op_class="vecmat_t", parallel=4096,
                 row_loop=576, columns=4096)
    spec = specs["nvidia-t4"]
    assert kernel_time(small, spec, device_profile(spec)) == pytest.approx(
        device_profile(spec).predict(small.flops, small.bytes, "vecmat_t", "f32", 4, spec.peak_flops,
                                     spec.memory_bandwidth, parallel=4096, columns=4096)[0])


def test_the_machine_a_profile_was_measured_on_is_priced_as_measured(tmp_path):
    """This machine's CPU and lavapipe, and the H200 the cuda profile came from, keep the
    rates their profiles were fitted against; another GPU scales them by its datasheet over
    the H200's."""
    from agentc.cost.catalog import load_catalog

    catalog = load_catalog()
    specs = _specs(tmp_path, ["this-machine-cpu", "lavapipe", "nvidia-h200-sxm", "nvidia-h100-sxm"])
    hw = load_hardware()
    for t, kind in [("this-machine-cpu", "cpu"), ("lavapipe", "vulkan"), ("nvidia-h200-sxm", "cuda")]:
        assert (specs[t].peak_flops, specs[t].memory_bandwidth) == (catalog.devices[kind].peak_flops,
                                                                     catalog.devices[kind].memory_bandwidth), t
        assert specs[t].measured_as == kind
    h100, h200 = hw["nvidia-h100-sxm"], hw["nvidia-h200-sxm"]
    assert specs["nvidia-h100-sxm"].memory_bandwidth == pytest.approx(
        catalog.devices["cuda"].memory_bandwidth * h100.memory_bandwidth / h200.memory_bandwidth)
    assert specs["nvidia-h100-sxm"].dram == h100.memory_bandwidth and specs["nvidia-h100-sxm"].measured_as == ""
