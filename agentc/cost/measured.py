"""Operator times measured on this machine (`agentc calibrate BUILD`), which the cost model
prices with before its roofline.

The roofline prices a kernel from its FLOPs and bytes through a profile fitted on
microbenchmarks; what it cannot see (IREE's dispatch count for a many-op kernel, weights
that stream from DRAM rather than cache, the runtime's call, transfer and readback, a host
tokenizer's real cost) a run shows. `agentc calibrate` runs a build and records, per
kernel implementation (a hash of its IR) and device, the median time the runtime took per
call, and per host operation (its kind and model) the median time on the host. Any later
compile that places the same kernel on the same kind of device (another agent using the
same model, at the same budget) is priced with the measurement. A kernel not measured
itself is priced by the roofline times its class's correction: the median, over the
kernels of its op class measured on that device, of measured / roofline (the same model
at another prompt budget, another model of the same kind).

Records live in the compile cache (`$AGENTC_CACHE/measured-times`, or the namespace
`$AGENTC_MEASURED` names: a benchmark's own), keyed by what they measure; `agentc cache
clear` drops them.
"""

from __future__ import annotations

import hashlib
import json
import os
import statistics

from agentc import store


def _kind() -> str:
    return os.environ.get("AGENTC_MEASURED", "measured-times")


def impl_digest(impl) -> str:
    """A kernel implementation's identity: the hash of its IR (a `func.func`)."""
    text = impl.operation.get_asm(use_local_scope=True, enable_debug_info=False)
    return hashlib.sha256(text.encode()).hexdigest()


def _read(key: dict) -> dict | None:
    hit = store.lookup(_kind(), key)
    return json.loads(hit.read_text()) if hit is not None else None


def _write(key: dict, record: dict) -> None:
    store.put_bytes(_kind(), key, json.dumps(record).encode(), ".json")


def _kernel_key(digest: str, device: str) -> dict:
    return {"kernel": digest, "device": device}


def _host_key(kind: str, model: str) -> dict:
    """A host op's record: its kind and model, the model's prompt budget (`@PxS`) aside (a
    tokenizer's cost does not depend on it)."""
    return {"host_op": kind, "model": model.partition("@")[0]}


def _class_key(op_class: str, device: str) -> dict:
    return {"op_class": op_class, "device": device}


GAP_KEY = {"runtime": "op_gap"}


def kernel_seconds(digest: str, device: str) -> float | None:
    record = _read(_kernel_key(digest, device))
    return record["seconds"] if record else None


def host_seconds(kind: str, model: str) -> float | None:
    record = _read(_host_key(kind, model))
    return record["seconds"] if record else None


def class_factor(op_class: str, device: str) -> float | None:
    """The median of measured / roofline over the kernels of `op_class` measured on `device`."""
    record = _read(_class_key(op_class, device))
    return statistics.median(record["ratios"].values()) if record else None


def op_gap_seconds(device: str) -> float:
    """What the runtime adds per operator between operators (scheduling, handing values on)
    before an operator on `device` (or `host`), measured by agentc calibrate; 0 until then.
    Per device: submitting to lavapipe costs more than a call on the local CPU, and one
    build's calibration must not reprice another device's operators."""
    record = _read({**GAP_KEY, "device": device})
    return record["seconds"] if record else 0.0


def record_kernel(digest: str, device: str, seconds: float, calls: int) -> None:
    _write(_kernel_key(digest, device), {"seconds": seconds, "calls": calls})


def record_host(kind: str, model: str, seconds: float, calls: int) -> None:
    _write(_host_key(kind, model), {"seconds": seconds, "calls": calls})


def record_ratio(op_class: str, device: str, digest: str, ratio: float) -> None:
    """Add one kernel's measured / roofline to its class on `device` (kept per kernel, so a
    kernel calibrated again replaces its own ratio)."""
    key = _class_key(op_class, device)
    ratios = (_read(key) or {"ratios": {}})["ratios"]
    ratios[digest] = ratio
    _write(key, {"ratios": ratios})


def record_op_gap(device: str, seconds: float) -> None:
    _write({**GAP_KEY, "device": device}, {"seconds": seconds})
