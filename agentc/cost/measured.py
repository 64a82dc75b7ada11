"""Operator times measured on this machine (`agentc calibrate BUILD`), which the cost model
prices with before its roofline.

The roofline prices a kernel from its FLOPs and bytes through a profile fitted on
microbenchmarks; what it cannot see (IREE's dispatch count for a many-op kernel, weights
that stream from DRAM rather than cache, the runtime's call, transfer and readback, a host
tokenizer's real cost) a run shows. `agentc calibrate` runs a build and records, per
kernel implementation (a hash of its IR) and device, the median time the runtime took per
call, and per host operation (its kind and model) the median time on the host. Any later
compile that places the same kernel on the same kind of device (another agent using the
same model, at the same budget) is priced with the measurement.

Records live in the compile cache (`$AGENTC_CACHE/measured-times`), keyed by what they
measure; `agentc cache clear` drops them.
"""

from __future__ import annotations

import hashlib
import json

from agentc import store

KIND = "measured-times"


def impl_digest(impl) -> str:
    """A kernel implementation's identity: the hash of its IR (a `func.func`)."""
    text = impl.operation.get_asm(use_local_scope=True, enable_debug_info=False)
    return hashlib.sha256(text.encode()).hexdigest()


def _kernel_key(digest: str, device: str) -> dict:
    return {"kernel": digest, "device": device}


def _host_key(kind: str, model: str) -> dict:
    return {"host_op": kind, "model": model}


def kernel_seconds(digest: str, device: str) -> float | None:
    hit = store.lookup(KIND, _kernel_key(digest, device))
    return json.loads(hit.read_text())["seconds"] if hit is not None else None


def host_seconds(kind: str, attrs: dict) -> float | None:
    hit = store.lookup(KIND, _host_key(kind, str(attrs.get("model", ""))))
    return json.loads(hit.read_text())["seconds"] if hit is not None else None


def record_kernel(digest: str, device: str, seconds: float, calls: int) -> None:
    store.put_bytes(KIND, _kernel_key(digest, device), json.dumps({"seconds": seconds, "calls": calls}).encode(),
                    ".json")


def record_host(kind: str, model: str, seconds: float, calls: int) -> None:
    store.put_bytes(KIND, _host_key(kind, model), json.dumps({"seconds": seconds, "calls": calls}).encode(),
                    ".json")
