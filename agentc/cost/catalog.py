"""Load the device catalog (catalog.yaml) into typed records, with errors that name the
file and field at fault."""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from pathlib import Path

import yaml

CATALOG_PATH = Path(__file__).with_name("catalog.yaml")


class CatalogError(ValueError):
    pass


@dataclass(frozen=True)
class DeviceSpec:
    name: str
    runtime: str
    peak_flops: float
    compute_efficiency: float
    memory_bandwidth: float
    memory_efficiency: float
    memory_bytes: float
    call_overhead_s: float
    dispatch_overhead_s: float
    memory_space: str
    cost_per_hour: float
    description: str = ""
    profile: str = ""  # calibration profile (agentc bench); resolved to an absolute path
    # Iterations after which the device's shaders stop a loop (lavapipe), if it has a limit:
    # placement keeps kernels that reduce a longer row off it (roofline.runs_on).
    max_loop_iterations: float | None = None
    # What a call per decode step costs per token beyond its kernels in agentc's runtime
    # (two calls, the token read back, the end-of-turn check, scheduling): the round trip a
    # decode chunk saves (agentc.cost.decode_chunk).
    sync_s: float = 0.0
    # The rate a kernel that streams more than any cache holds cannot beat (bytes/s): the
    # datasheet's for a catalog device, measured for this machine's. None: memory_bandwidth.
    # `memory_bandwidth` is the rate a profile was fitted against, not always the DRAM's.
    dram_bandwidth: float | None = None
    # The device kind whose `agentc calibrate` records price this device ("": its own name):
    # the hardware entry of the machine a local kind was measured on reads that kind's.
    measured_as: str = ""
    # The hardware it computes on, where another device computes on it too ("": its own):
    # devices of one machine naming the same `cores` run one operator at a time between
    # them (lavapipe runs Vulkan on the CPU device's cores: running both at once halves each).
    cores: str = ""

    @property
    def dram(self) -> float:
        return self.dram_bandwidth or self.memory_bandwidth


def device_profile(spec: DeviceSpec):
    """The spec's calibration profile (loaded once), or None: defaults apply."""
    return _load_profile(spec.profile) if spec.profile else None


@functools.cache
def _load_profile(path: str):
    from agentc.cost.profile_json import load_profile

    return load_profile(path)


@dataclass(frozen=True)
class Catalog:
    devices: dict[str, DeviceSpec]
    host_threads: int
    host_latency_s: dict[str, float]
    links: dict[tuple[str, str], tuple[float, float]]  # memory-space pair -> (latency, bw)


def load_catalog(path: str | Path = CATALOG_PATH) -> Catalog:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as e:
        raise CatalogError(f"{path}: cannot read catalog: {e}") from None
    devices = {}
    # Required: the fields without a default, but the name (the entry's key).
    fields = [f.name for f in dataclasses.fields(DeviceSpec)
              if f.default is dataclasses.MISSING and f.name != "name"]
    for name, d in (data.get("devices") or {}).items():
        for f in fields:
            if f not in d:
                raise CatalogError(f"{path}: devices.{name}: missing field '{f}'")
        for f in fields:
            if f not in ("runtime", "memory_space"):
                d[f] = _number(d[f])
            if f not in ("runtime", "memory_space") and not isinstance(d[f], (int, float)):
                raise CatalogError(f"{path}: devices.{name}.{f}: expected a number, got {d[f]!r}")
            if f in ("peak_flops", "memory_bandwidth", "memory_bytes") and d[f] <= 0:
                raise CatalogError(f"{path}: devices.{name}.{f}: must be > 0, got {d[f]}")
        profile = str(d.get("profile", ""))
        if profile:  # beside this catalog, else among the profiles shipped with agentc
            found = [p for p in (path.parent / profile, CATALOG_PATH.parent / profile) if p.is_file()]
            if not found:
                raise CatalogError(f"{path}: devices.{name}.profile: no such file {path.parent / profile}")
            profile = str(found[0].resolve())
        limit = d.get("max_loop_iterations")
        if limit is not None:
            limit = _number(limit)
            if not isinstance(limit, (int, float)) or limit <= 0:
                raise CatalogError(f"{path}: devices.{name}.max_loop_iterations: expected a "
                                   f"number > 0, got {limit!r}")
        sync = _number(d.get("sync_s", 0.0))
        if not isinstance(sync, (int, float)) or sync < 0:
            raise CatalogError(f"{path}: devices.{name}.sync_s: expected a number >= 0, got {sync!r}")
        dram = _number(d.get("dram_bandwidth"))
        if dram is not None and (not isinstance(dram, (int, float)) or dram <= 0):
            raise CatalogError(f"{path}: devices.{name}.dram_bandwidth: expected a number > 0, got {dram!r}")
        cores = d.get("cores", "")
        if not isinstance(cores, str):
            raise CatalogError(f"{path}: devices.{name}.cores: expected a name, got {cores!r}")
        devices[name] = DeviceSpec(name=name, description=d.get("description", ""), profile=profile,
                                   max_loop_iterations=limit, sync_s=float(sync), cores=cores,
                                   dram_bandwidth=float(dram) if dram is not None else None,
                                   **{f: d[f] for f in fields})
    links = {}
    for key, v in (data.get("links") or {}).items():
        a, b = key.split("-", 1)
        v = {k: _number(x) for k, x in v.items()}
        if v.get("bandwidth", 0) <= 0:
            raise CatalogError(f"{path}: links.{key}.bandwidth: must be > 0, got {v.get('bandwidth')}")
        links[(a, b)] = (float(v["latency"]), float(v["bandwidth"]))
    host = data.get("host") or {}
    latency = {k: _number(v) for k, v in (host.get("op_latency_s") or {}).items()}
    return Catalog(devices, int(host.get("threads", 8)), latency, links)


def _number(x):
    """YAML 1.1 reads 1.0e11 (no exponent sign) as a string; accept it as a number."""
    if isinstance(x, str):
        try:
            return float(x)
        except ValueError:
            return x
    return x
